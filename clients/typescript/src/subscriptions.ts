// profileUpdated over graphql-transport-ws (graphql-ws), resuming from the last cursor after
// a drop, as powermemo_gql/client/subscriptions.py does.

import { createClient } from "graphql-ws";

import {
  AuthenticationError,
  ConnectionFailedError,
  ForbiddenError,
  fromGraphQLErrors,
  InvalidInputError,
  NotFoundError,
  PowermemoError,
} from "./errors.js";
import type { ProfileUpdatedSubscription, ProfileUpdatedSubscriptionVariables } from "./generated/graphql.js";
import type { ChangeKind, ProfileChange } from "./models.js";
import { DOCUMENTS } from "./operations.js";
import { authHeaders } from "./transport.js";

/** A WebSocket class (the browser's, or the `ws` package's in Node). */
export type WebSocketImpl = unknown;

/**
 * How a subscription comes back after a drop: up to `attempts` reconnections in a row that
 * receive nothing, waiting `backoffMs * 2 ** n` (at most `maxBackoffMs`, plus up to 10%
 * jitter) before each. The defaults keep trying for about a minute and a half.
 */
export interface RetryOptions {
  attempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
}

const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 8, backoffMs: 500, maxBackoffMs: 30_000 };
const CONNECT_TIMEOUT_MS = 10_000; // a connection's acknowledgement
// The server closes a socket whose connection_init carries no valid token with 4403.
const UNAUTHORIZED_CLOSE = 4403;
// Retrying these cannot help: the key, the user or the arguments are wrong.
const FINAL = [AuthenticationError, ForbiddenError, NotFoundError, InvalidInputError];

export function retryDelayMs(retry: Required<RetryOptions>, failures: number): number {
  const base = Math.min(retry.maxBackoffMs, retry.backoffMs * 2 ** (failures - 1));
  return base * (1 + 0.1 * Math.random()); // jitter, so clients do not come back in step
}

interface ProfileUpdatesOptions {
  wsUrl: string;
  apiKey: string;
  userId: string;
  since: string | null;
  kinds: ChangeKind[] | null;
  currentCursor: () => Promise<string>;
  retry: RetryOptions;
  webSocketImpl: WebSocketImpl | null;
}

/**
 * The changes of one user's memory, as they are committed: an AsyncIterable.
 *
 * Without `since`, `start()` (or the first step of the iteration) reads the feed's current
 * end and follows from there, so nothing committed after it is missed. After a drop
 * (network, a server restart closing sockets with 1012, FEED_INTERRUPTED) it reconnects with
 * `since` = the last cursor it yielded; `cursor` is that position, to keep across restarts
 * of your process. Leaving a `for await` loop (or `close()`) closes the socket.
 */
export class ProfileUpdates implements AsyncIterable<ProfileChange> {
  /** The last change's cursor (or where the feed was followed from). */
  cursor: string | null;
  readonly userId: string;
  private readonly options: ProfileUpdatesOptions;
  private readonly retry: Required<RetryOptions>;
  private readonly stopped = new AbortController();
  private iterator: AsyncGenerator<ProfileChange, void, undefined> | null = null;

  constructor(options: ProfileUpdatesOptions) {
    this.options = options;
    this.userId = options.userId;
    this.cursor = options.since;
    this.retry = {
      attempts: options.retry.attempts ?? DEFAULT_RETRY.attempts,
      backoffMs: options.retry.backoffMs ?? DEFAULT_RETRY.backoffMs,
      maxBackoffMs: options.retry.maxBackoffMs ?? DEFAULT_RETRY.maxBackoffMs,
    };
  }

  /** Pin the starting position now, if `since` was not given: every change committed after
   * this resolves is delivered. Resolves to the cursor. */
  async start(): Promise<string> {
    if (this.cursor === null) {
      this.cursor = await this.options.currentCursor();
    }
    return this.cursor;
  }

  /** Close the socket and end the iteration (a waiting `next()` resolves as done). */
  async close(): Promise<void> {
    this.stopped.abort(); // the open connection disposes of its socket on this
  }

  [Symbol.asyncIterator](): AsyncGenerator<ProfileChange, void, undefined> {
    this.iterator ??= this.follow();
    return this.iterator;
  }

  private async *follow(): AsyncGenerator<ProfileChange, void, undefined> {
    await this.start();
    let failures = 0;
    try {
      while (!this.stopped.signal.aborted) {
        let reason: unknown;
        try {
          for await (const change of this.connection(this.cursor)) {
            failures = 0;
            this.cursor = change.cursor;
            yield change;
          }
          reason = new Error("the server ended the subscription");
        } catch (error) {
          if (FINAL.some((kind) => error instanceof kind)) {
            throw error;
          }
          reason = error;
        }
        if (this.stopped.signal.aborted) {
          return;
        }
        failures += 1;
        if (failures > this.retry.attempts) {
          throw new ConnectionFailedError(
            "CONNECTION_FAILED",
            `profileUpdated(${JSON.stringify(this.userId)}) stayed down after ${this.retry.attempts} ` +
              `reconnections: ${describe(reason)}`,
            { cause: reason },
          );
        }
        await sleep(retryDelayMs(this.retry, failures), this.stopped.signal);
      }
    } finally {
      this.stopped.abort();
    }
  }

  /** One websocket: connect, authenticate in connection_init, follow from `since`. */
  private async *connection(since: string | null): AsyncGenerator<ProfileChange, void, undefined> {
    let connected = false;
    let refusedReconnect = false;
    const socket = createClient({
      url: this.options.wsUrl,
      webSocketImpl: this.options.webSocketImpl ?? (await defaultWebSocket()),
      lazy: true,
      retryAttempts: 0,
      connectionAckWaitTimeout: CONNECT_TIMEOUT_MS,
      // graphql-ws would resubscribe by itself after a normal close (1000), with the `since`
      // of this connection, and repeat changes; one connection per socket, then we resume.
      connectionParams: () => {
        if (connected) {
          refusedReconnect = true;
          throw new Error("reconnect from the last cursor instead");
        }
        connected = true;
        return authHeaders(this.options.apiKey);
      },
    });
    const dispose = (): void => void socket.dispose();
    this.stopped.signal.addEventListener("abort", dispose, { once: true });
    if (this.stopped.signal.aborted) {
      dispose();
      return;
    }
    const variables: ProfileUpdatedSubscriptionVariables = {
      userId: this.userId,
      since,
      kinds: this.options.kinds,
    };
    const results = socket.iterate<ProfileUpdatedSubscription>({ query: DOCUMENTS.profileUpdated, variables });
    try {
      for await (const result of results) {
        if (result.errors?.length) {
          throw fromGraphQLErrors(result.errors); // e.g. FEED_INTERRUPTED: resumed
        }
        if (result.data) {
          yield result.data.profileUpdated;
        }
      }
    } catch (error) {
      throw refusedReconnect ? new ConnectionFailedError("CONNECTION_FAILED", "the socket closed") : translate(error);
    } finally {
      this.stopped.signal.removeEventListener("abort", dispose);
      await results.return?.();
      await socket.dispose();
    }
  }
}

/** What graphql-ws rejected with, as our error: a close event, GraphQL errors, an Error. */
function translate(error: unknown): unknown {
  if (error instanceof PowermemoError) {
    return error;
  }
  if (Array.isArray(error)) {
    return fromGraphQLErrors(error); // an `error` message: refused before the first change
  }
  if (isCloseEvent(error)) {
    if (error.code === UNAUTHORIZED_CLOSE) {
      return new AuthenticationError("UNAUTHENTICATED", error.reason || "missing, invalid or revoked token", {
        cause: error,
      });
    }
    return new ConnectionFailedError("CONNECTION_FAILED", `socket closed with ${error.code} ${error.reason}`.trim(), {
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : describe(error);
  return new ConnectionFailedError("CONNECTION_FAILED", message || "the socket failed", { cause: error });
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === "object" && value !== null && "code" in value && "reason" in value;
}

function describe(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  if (isCloseEvent(reason)) {
    return `socket closed with ${reason.code}`;
  }
  return typeof reason === "object" && reason !== null && "type" in reason ? `socket ${String(reason.type)}` : String(reason);
}

/** The global WebSocket (browsers, Node 22+), else the `ws` package (Node 20). */
async function defaultWebSocket(): Promise<WebSocketImpl> {
  if (typeof globalThis.WebSocket === "function") {
    return globalThis.WebSocket;
  }
  const ws = await import("ws");
  return ws.default;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
