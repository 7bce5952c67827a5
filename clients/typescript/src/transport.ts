// One GraphQL request over fetch, and the typed error of whatever went wrong with it.

import { ConnectionFailedError, fromGraphQLErrors, fromHttpStatus, PowermemoError } from "./errors.js";

/** The HTTP and websocket URLs of the endpoint, from the server's base URL or the endpoint
 * itself: `http://host:8019` and `http://host:8019/graphql` are the same. */
export function endpoints(url: string): { http: string; ws: string } {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`expected an http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  let path = parsed.pathname.replace(/\/+$/, "");
  if (!path.endsWith("/graphql")) {
    path = `${path}/graphql`;
  }
  parsed.pathname = path;
  parsed.hash = "";
  const http = parsed.toString();
  parsed.protocol = parsed.protocol === "https:" ? "wss:" : "ws:";
  return { http, ws: parsed.toString() };
}

export function authHeaders(apiKey: string): Record<string, string> {
  return { Authorization: `Bearer ${apiKey}` };
}

/** `Retry-After` in seconds: delta-seconds, or an HTTP date. */
export function retryAfterSeconds(value: string | null): number | null {
  if (!value) {
    return null;
  }
  const seconds = Number(value);
  if (Number.isFinite(seconds)) {
    return Math.max(0, seconds);
  }
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

export interface HttpOptions {
  url: string;
  apiKey: string;
  /** Milliseconds a request may take; null waits forever. */
  timeoutMs: number | null;
  fetch: typeof globalThis.fetch;
}

interface GraphQLResponse {
  data?: Record<string, unknown> | null;
  errors?: unknown[];
}

/** POST one document; returns `data`, or throws the typed error of a refusal or of
 * top-level `errors`. Result-union error members are data: the caller maps them. */
export async function post(
  options: HttpOptions,
  query: string,
  variables: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await options.fetch(options.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...authHeaders(options.apiKey) },
      body: JSON.stringify({ query, variables }),
      ...(options.timeoutMs === null ? {} : { signal: AbortSignal.timeout(options.timeoutMs) }),
    });
  } catch (error) {
    throw unreachable(error);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw unreachable(error);
  }
  const body = parseJson(text);
  if (response.status >= 400) {
    const retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
    if (body?.errors?.length) {
      throw fromGraphQLErrors(body.errors, { status: response.status, retryAfter });
    }
    throw fromHttpStatus(response.status, text.slice(0, 200) || response.statusText, retryAfter);
  }
  if (body === null) {
    throw new PowermemoError("PROTOCOL_ERROR", `not a GraphQL response: ${text.slice(0, 200)}`, {
      status: response.status,
    });
  }
  if (body.errors?.length) {
    throw fromGraphQLErrors(body.errors);
  }
  return body.data ?? {};
}

function parseJson(text: string): GraphQLResponse | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as GraphQLResponse) : null;
  } catch {
    return null;
  }
}

/** A request that got no answer: the server is unreachable, or too slow. */
function unreachable(error: unknown): PowermemoError {
  if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return new ConnectionFailedError("TIMEOUT", "the server did not answer in time", { cause: error });
  }
  const reason = error instanceof Error ? (describeCause(error) ?? error.message) : String(error);
  return new ConnectionFailedError("CONNECTION_FAILED", reason, { cause: error });
}

// Node's fetch says only "fetch failed"; the reason (ECONNREFUSED ...) is its cause.
function describeCause(error: Error): string | null {
  const cause = error.cause;
  return cause instanceof Error ? `${error.message}: ${cause.message}` : null;
}
