// What the helpers return: the shapes of the documents' fragments, generated from the schema.
// Times are ISO 8601 strings, as the server sends them (`new Date(entry.updatedAt)`).

import type {
  BlobFieldsFragment,
  ChangeFieldsFragment,
  ChangeKind,
  ContextQuery,
  EntryFieldsFragment,
  EventFieldsFragment,
  FlushFieldsFragment,
  FlushOutcome,
  UserFieldsFragment,
} from "./generated/graphql.js";

export type {
  ChangeKind,
  FlushOutcome,
  FlushStatus,
  FlushTrigger,
  ErrorCode,
  ProfileSource,
  RevisionAction,
  ProfileDeltaAction,
} from "./generated/graphql.js";

export type User = UserFieldsFragment;
/** A stored blob: `type` is CHAT, DOCUMENT, CODE, IMAGE or TRANSCRIPT. */
export type Blob = BlobFieldsFragment;
/**
 * One run of the memory pipeline; `droppedItems` counts LLM answer items that did not parse;
 * `embeddingTexts` / `embeddingTokens` what embedding the rows it wrote cost (they grow after
 * it finished, as the indexer stores their vectors).
 */
export type Flush = FlushFieldsFragment;
/** One fact of a profile; `source` is LLM, MANUAL or IMPORT. */
export type ProfileEntry = EntryFieldsFragment;
/** Something that happened to a user, dated by when it was said; `profileDelta`: what it
 * did to the profile (action ADD, UPDATE or DELETE, topic, subTopic, content, previous). */
export type Event = EventFieldsFragment;
/** One change of the feed; pass `cursor` as `since` (or `after`) to resume after it. */
export type ProfileChange = ChangeFieldsFragment;
/** A user's memory as one prompt-ready string of `tokens` tokens. */
export type Context = NonNullable<ContextQuery["user"]>["context"];

/** What a flush request did; `flush` is set when one ran (FLUSHED or INTERRUPTED). */
export interface FlushResult {
  outcome: FlushOutcome;
  flush: Flush | null;
}

/** Every kind of change, for checking `kinds` before a subscription is sent. A kind added to
 * the schema fails the build here until it is listed. */
const KINDS: Record<ChangeKind, true> = {
  ENTRY_ADDED: true,
  ENTRY_UPDATED: true,
  ENTRY_DELETED: true,
  BUFFER_FLUSHED: true,
  FLUSH_FAILED: true,
  EVENT_UPDATED: true,
  EVENT_DELETED: true,
};
export const CHANGE_KINDS = Object.keys(KINDS) as ChangeKind[];

/** A chat message: `["user", "Hi"]`, or an object with `alias` (the speaker's name in
 * prompts) and `createdAt` (when it was said: a Date, or an ISO 8601 string with a zone). */
export type ChatMessage =
  | readonly [role: string, content: string]
  | { role: string; content: string; alias?: string | null; createdAt?: Date | string | null };
