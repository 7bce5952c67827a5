// Each helper's variables and the reading of its `data`, free of any I/O, so the mapping of
// result-union errors and of missing users exists once.

import * as documents from "./documents.js";
import { withFragments } from "./documents.js";
import { fromUnionMember, InvalidInputError, NotFoundError } from "./errors.js";
import type { ChatMessageInput } from "./generated/graphql.js";
import { CHANGE_KINDS, type ChangeKind, type ChatMessage } from "./models.js";

const { ERROR_FIELDS, USER_FIELDS, BLOB_FIELDS, FLUSH_FIELDS, ENTRY_FIELDS, EVENT_FIELDS, CHANGE_FIELDS } =
  documents;

/** The documents as sent, each with the fragments it spreads. */
export const DOCUMENTS = {
  createUser: withFragments(documents.CREATE_USER, USER_FIELDS, ERROR_FIELDS),
  getUser: withFragments(documents.GET_USER, USER_FIELDS),
  updateUser: withFragments(documents.UPDATE_USER, USER_FIELDS, ERROR_FIELDS),
  deleteUser: withFragments(documents.DELETE_USER, ERROR_FIELDS),
  insertBlob: withFragments(documents.INSERT_BLOB, BLOB_FIELDS, ERROR_FIELDS),
  flushBuffer: withFragments(documents.FLUSH_BUFFER, FLUSH_FIELDS, ERROR_FIELDS),
  profile: withFragments(documents.PROFILE, ENTRY_FIELDS),
  context: documents.CONTEXT,
  addProfileEntry: withFragments(documents.ADD_PROFILE_ENTRY, ENTRY_FIELDS, ERROR_FIELDS),
  updateProfileEntry: withFragments(documents.UPDATE_PROFILE_ENTRY, ENTRY_FIELDS, ERROR_FIELDS),
  deleteProfileEntry: withFragments(documents.DELETE_PROFILE_ENTRY, ERROR_FIELDS),
  importProfile: withFragments(documents.IMPORT_PROFILE, ENTRY_FIELDS, ERROR_FIELDS),
  changesCursor: documents.CHANGES_CURSOR,
  changes: withFragments(documents.CHANGES, CHANGE_FIELDS),
  events: withFragments(documents.EVENTS, EVENT_FIELDS),
  profileUpdated: withFragments(documents.PROFILE_UPDATED, CHANGE_FIELDS),
} as const;

/** A result union's member: the payload, or an error member implementing `Error`. */
type Member = { __typename: string; code?: unknown; message?: unknown; field?: unknown };

/** The payload of a result union, or the typed error of its error member. */
export function payload<T extends Member, P extends T["__typename"]>(
  result: T,
  payloadType: P,
): Extract<T, { __typename: P }> {
  if (result.__typename !== payloadType) {
    throw fromUnionMember({
      __typename: result.__typename,
      code: String(result.code),
      message: String(result.message),
      field: typeof result.field === "string" ? result.field : null,
    });
  }
  return result as Extract<T, { __typename: P }>;
}

/** `user(userId)` of a query that needs the user: null becomes NotFoundError. */
export function existingUser<U>(user: U | null | undefined, userId: string): U {
  if (user === null || user === undefined) {
    throw new NotFoundError("NOT_FOUND", `User '${userId}' not found`, { typename: "NotFound" });
  }
  return user;
}

/** One message as ChatMessageInput; mistakes throw InvalidInputError before any request. */
export function chatMessage(message: ChatMessage, index: number): ChatMessageInput {
  const path = `blob.chat.messages[${index}]`;
  let role: unknown;
  let content: unknown;
  let alias: unknown = null;
  let createdAt: unknown = null;
  if (Array.isArray(message)) {
    if (message.length !== 2) {
      throw new InvalidInputError("INVALID_INPUT", "expected [role, content]", { field: path });
    }
    [role, content] = message;
  } else if (typeof message === "object" && message !== null) {
    const known = new Set(["role", "content", "alias", "createdAt"]);
    const unknown = Object.keys(message).filter((key) => !known.has(key));
    if (unknown.length > 0) {
      throw new InvalidInputError("INVALID_INPUT", `unknown keys ${unknown.join(", ")}; use ${[...known].join(", ")}`, {
        field: path,
      });
    }
    ({ role, content } = message as { role: unknown; content: unknown });
    alias = (message as { alias?: unknown }).alias ?? null;
    createdAt = (message as { createdAt?: unknown }).createdAt ?? null;
  } else {
    throw new InvalidInputError("INVALID_INPUT", "expected a [role, content] pair or an object", { field: path });
  }
  if (typeof role !== "string" || !["USER", "ASSISTANT"].includes(role.toUpperCase())) {
    throw new InvalidInputError("INVALID_INPUT", "role is 'user' or 'assistant'", { field: `${path}.role` });
  }
  if (typeof content !== "string") {
    throw new InvalidInputError("INVALID_INPUT", "content is a string", { field: `${path}.content` });
  }
  if (alias !== null && typeof alias !== "string") {
    throw new InvalidInputError("INVALID_INPUT", "alias is a string", { field: `${path}.alias` });
  }
  if (createdAt instanceof Date) {
    createdAt = createdAt.toISOString();
  } else if (createdAt !== null && typeof createdAt !== "string") {
    throw new InvalidInputError("INVALID_INPUT", "createdAt is a Date or an ISO 8601 string", {
      field: `${path}.createdAt`,
    });
  }
  return {
    role: role.toUpperCase() as ChatMessageInput["role"],
    content,
    alias: alias as string | null,
    createdAt: createdAt as string | null,
  };
}

/** `kinds` of a subscription, checked: an unknown kind throws InvalidInputError("kinds"). */
export function changeKinds(kinds: readonly string[] | null | undefined): ChangeKind[] | null {
  if (kinds === null || kinds === undefined) {
    return null;
  }
  for (const kind of kinds) {
    if (!(CHANGE_KINDS as readonly string[]).includes(kind)) {
      throw new InvalidInputError("INVALID_INPUT", `unknown change kind ${JSON.stringify(kind)}`, { field: "kinds" });
    }
  }
  return [...kinds] as ChangeKind[];
}

/** A list argument: a lone string would otherwise be sent as it is, not as a list. */
export function list(values: readonly string[] | string | null | undefined): string[] | null {
  if (values === null || values === undefined) {
    return null;
  }
  return typeof values === "string" ? [values] : [...values];
}
