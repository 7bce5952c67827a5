// Powermemo: the client of one project's API key. Queries and mutations over fetch; live
// changes over graphql-ws (see subscriptions.ts). Mirrors the Python client's helpers.

import type * as G from "./generated/graphql.js";
import type {
  Blob,
  ChatMessage,
  Context,
  Event,
  Flush,
  FlushResult,
  ProfileChange,
  ProfileEntry,
  User,
} from "./models.js";
import { changeKinds, chatMessage, DOCUMENTS, existingUser, list, payload } from "./operations.js";
import { ProfileUpdates, type RetryOptions, type WebSocketImpl } from "./subscriptions.js";
import { endpoints, type HttpOptions, post } from "./transport.js";

export interface PowermemoOptions {
  /** Milliseconds a request may take (flush with wait and importProfile wait for the LLM);
   * null waits forever. Default 120 000. */
  timeoutMs?: number | null;
  /** The fetch to use; default the global one (Node 18+, browsers). */
  fetch?: typeof globalThis.fetch;
  /** The WebSocket class of subscriptions; default the global one, else the `ws` package. */
  webSocketImpl?: WebSocketImpl;
  /** The default reconnection policy of this client's subscriptions. */
  retry?: RetryOptions;
}

type Json = Record<string, unknown>;
type Strings = readonly string[] | string | null;

const DEFAULT_TIMEOUT_MS = 120_000;

/**
 * A Powermemo server, for one project's API key.
 *
 * `url` is the server's base URL or its `/graphql` endpoint. Helpers throw typed errors
 * (`NotFoundError`, `InvalidInputError`, ...); nothing is retried except subscriptions.
 */
export class Powermemo {
  readonly url: string;
  readonly wsUrl: string;
  private readonly http: HttpOptions;
  private readonly apiKey: string;
  private readonly options: PowermemoOptions;

  constructor(url: string, apiKey: string, options: PowermemoOptions = {}) {
    const { http, ws } = endpoints(url);
    this.url = http;
    this.wsUrl = ws;
    this.apiKey = apiKey;
    this.options = options;
    this.http = {
      url: http,
      apiKey,
      timeoutMs: options.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : options.timeoutMs,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    };
  }

  /** Run any document; returns its `data`. Top-level errors throw typed errors; result-union
   * error members come back as data, for you to read. */
  async execute<T = Json>(document: string, variables: Json = {}): Promise<T> {
    return (await post(this.http, document, variables)) as T;
  }

  private async run<T>(document: string, variables: object): Promise<T> {
    return (await post(this.http, document, variables as Json)) as T;
  }

  // Users

  /** Create a user (`id`, your own id for them, generated when omitted): its `userId` is
   * that id, its `id` the server's global id. AlreadyExistsError, InvalidInputError. */
  async createUser(id: string | null = null, data: unknown = null): Promise<User> {
    const variables: G.CreateUserMutationVariables = { input: { userId: id, data } };
    const result = await this.run<G.CreateUserMutation>(DOCUMENTS.createUser, variables);
    return payload(result.createUser, "CreateUserPayload").user;
  }

  /** The user, or null when the project has no user with this id. */
  async getUser(id: string): Promise<User | null> {
    const variables: G.GetUserQueryVariables = { id };
    return (await this.run<G.GetUserQuery>(DOCUMENTS.getUser, variables)).user;
  }

  /** Replace the user's data. NotFoundError, InvalidInputError. */
  async updateUser(id: string, data: unknown): Promise<User> {
    const variables: G.UpdateUserMutationVariables = { input: { userId: id, data } };
    const result = await this.run<G.UpdateUserMutation>(DOCUMENTS.updateUser, variables);
    return payload(result.updateUser, "UpdateUserPayload").user;
  }

  /** Delete the user and all their memory. NotFoundError. */
  async deleteUser(id: string): Promise<void> {
    const variables: G.DeleteUserMutationVariables = { id };
    const result = await this.run<G.DeleteUserMutation>(DOCUMENTS.deleteUser, variables);
    payload(result.deleteUser, "DeleteUserPayload");
  }

  // Blobs

  /** Store one chat: `[["user", "Hi"], ["assistant", "Hello"]]`, or objects with `role`,
   * `content` and optional `alias` and `createdAt`. */
  async insertChat(userId: string, messages: readonly ChatMessage[], options: { fields?: Json | null } = {}): Promise<Blob> {
    const chat = messages.map((message, index) => chatMessage(message, index));
    return this.insert({ userId, blob: { chat: { messages: chat } }, fields: options.fields ?? null });
  }

  /** Store a document; like a chat, it joins the user's buffer. */
  async insertDocument(
    userId: string,
    content: string,
    options: { title?: string | null; fields?: Json | null } = {},
  ): Promise<Blob> {
    const document = { content, title: options.title ?? null };
    return this.insert({ userId, blob: { document }, fields: options.fields ?? null });
  }

  private async insert(input: G.InsertBlobInput): Promise<Blob> {
    const variables: G.InsertBlobMutationVariables = { input };
    const result = await this.run<G.InsertBlobMutation>(DOCUMENTS.insertBlob, variables);
    return payload(result.insertBlob, "InsertBlobPayload").blob;
  }

  // Memory

  /** Turn the user's buffer into memory now. With `wait` (default), returns the finished
   * Flush; null when none ran (`flushBuffer` says why). */
  async flush(userId: string, options: { wait?: boolean } = {}): Promise<Flush | null> {
    return (await this.flushBuffer(userId, options)).flush;
  }

  /** Like `flush`, with the outcome: FLUSHED, SCHEDULED, NOTHING_TO_FLUSH, BUSY or INTERRUPTED. */
  async flushBuffer(userId: string, options: { wait?: boolean } = {}): Promise<FlushResult> {
    const variables: G.FlushBufferMutationVariables = { userId, wait: options.wait ?? true };
    const result = await this.run<G.FlushBufferMutation>(DOCUMENTS.flushBuffer, variables);
    const { outcome, flush } = payload(result.flushBuffer, "FlushBufferPayload");
    return { outcome, flush };
  }

  /** The user's profile entries (`topk` / `maxTokens`: the most recently updated). */
  async profile(
    userId: string,
    options: { topics?: Strings; topk?: number | null; maxTokens?: number | null } = {},
  ): Promise<ProfileEntry[]> {
    const variables: G.ProfileQueryVariables = {
      userId,
      topics: list(options.topics),
      topk: options.topk ?? null,
      maxTokens: options.maxTokens ?? null,
    };
    const result = await this.run<G.ProfileQuery>(DOCUMENTS.profile, variables);
    return existingUser(result.user, userId).profile;
  }

  /** Profile and recent events as one prompt-ready string of at most `maxTokens` (1000). */
  async context(
    userId: string,
    options: {
      maxTokens?: number;
      preferTopics?: Strings;
      onlyTopics?: Strings;
      profileEventRatio?: number;
      includeBuffer?: boolean;
    } = {},
  ): Promise<Context> {
    const variables: G.ContextQueryVariables = {
      userId,
      maxTokens: options.maxTokens ?? 1000,
      preferTopics: list(options.preferTopics),
      onlyTopics: list(options.onlyTopics),
      profileEventRatio: options.profileEventRatio ?? 0.6,
      includeBuffer: options.includeBuffer ?? false,
    };
    const result = await this.run<G.ContextQuery>(DOCUMENTS.context, variables);
    return existingUser(result.user, userId).context;
  }

  /** Add an entry by hand (source: MANUAL). AlreadyExistsError for a taken slot. */
  async addProfileEntry(userId: string, topic: string, subTopic: string, content: string): Promise<ProfileEntry> {
    const variables: G.AddProfileEntryMutationVariables = { input: { userId, topic, subTopic, content } };
    const result = await this.run<G.AddProfileEntryMutation>(DOCUMENTS.addProfileEntry, variables);
    return payload(result.addProfileEntry, "AddProfileEntryPayload").entry;
  }

  /** Change an entry's content; the old value joins its history. */
  async updateProfileEntry(id: string, content: string): Promise<ProfileEntry> {
    const variables: G.UpdateProfileEntryMutationVariables = { input: { id, content } };
    const result = await this.run<G.UpdateProfileEntryMutation>(DOCUMENTS.updateProfileEntry, variables);
    return payload(result.updateProfileEntry, "UpdateProfileEntryPayload").entry;
  }

  async deleteProfileEntry(id: string): Promise<void> {
    const variables: G.DeleteProfileEntryMutationVariables = { id };
    const result = await this.run<G.DeleteProfileEntryMutation>(DOCUMENTS.deleteProfileEntry, variables);
    payload(result.deleteProfileEntry, "DeleteProfileEntryPayload");
  }

  /** Extract facts from free text (a bio, notes) into the profile (source: IMPORT); returns
   * the entries added or changed. Waits for the LLM: LLMUnavailableError. */
  async importProfile(userId: string, text: string): Promise<ProfileEntry[]> {
    const variables: G.ImportProfileMutationVariables = { input: { userId, text } };
    const result = await this.run<G.ImportProfileMutation>(DOCUMENTS.importProfile, variables);
    return payload(result.importProfile, "ImportProfilePayload").entries;
  }

  // Events and changes

  /** The user's events, by when they happened, newest first; `search`: every word. */
  async events(
    userId: string,
    options: { first?: number | null; after?: string | null; search?: string | null } = {},
  ): Promise<Event[]> {
    const variables: G.EventsQueryVariables = {
      userId,
      first: options.first ?? null,
      after: options.after ?? null,
      search: options.search ?? null,
    };
    const result = await this.run<G.EventsQuery>(DOCUMENTS.events, variables);
    return existingUser(result.user, userId).events.nodes;
  }

  /** A cursor at the current end of the user's change feed. */
  async changesCursor(userId: string): Promise<string> {
    const variables: G.ChangesCursorQueryVariables = { userId };
    const result = await this.run<G.ChangesCursorQuery>(DOCUMENTS.changesCursor, variables);
    return existingUser(result.user, userId).changesCursor;
  }

  /** A page of the change feed, oldest first; page on with `after: page.at(-1).cursor`. */
  async changes(
    userId: string,
    options: { after?: string | null; first?: number | null } = {},
  ): Promise<ProfileChange[]> {
    const variables: G.ChangesQueryVariables = { userId, first: options.first ?? null, after: options.after ?? null };
    const result = await this.run<G.ChangesQuery>(DOCUMENTS.changes, variables);
    return existingUser(result.user, userId).changes.nodes;
  }

  /**
   * Follow the user's changes live: `for await (const change of client.profileUpdates(id))`.
   * With `since` (a change's or `changesCursor()`'s cursor) the changes after it come first.
   * A dropped connection is resumed from the last change received, with bounded retries;
   * ConnectionFailedError when they run out.
   */
  profileUpdates(
    userId: string,
    options: { since?: string | null; kinds?: readonly string[] | null; retry?: RetryOptions } = {},
  ): ProfileUpdates {
    return new ProfileUpdates({
      wsUrl: this.wsUrl,
      apiKey: this.apiKey,
      userId,
      since: options.since ?? null,
      kinds: changeKinds(options.kinds),
      currentCursor: () => this.changesCursor(userId),
      retry: { ...this.options.retry, ...options.retry },
      webSocketImpl: this.options.webSocketImpl ?? null,
    });
  }
}
