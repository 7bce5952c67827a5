// Typed errors for what the server refuses, each carrying its GraphQL error code, as in the
// Python client (powermemo_gql/client/errors.py). Both shapes of a server error map here: a
// member of a result union implementing `Error` (e.g. NotFound) and a top-level error
// (`extensions.code`, e.g. UNAUTHENTICATED on HTTP 401 or BAD_USER_INPUT for an argument).

export interface ErrorDetails {
  /** The offending input, when the server names one (e.g. `blob.chat.messages[0].content`). */
  field?: string | null;
  /** The result-union member that carried the error (e.g. `NotFound`). */
  typename?: string | null;
  /** The HTTP status, when the request was refused before GraphQL ran. */
  status?: number | null;
  /** What caused this error on the client side (a network failure, a closed socket). */
  cause?: unknown;
}

/** Something the server refused or could not do; `code` is the GraphQL error code. */
export class PowermemoError extends Error {
  readonly code: string;
  readonly field: string | null;
  readonly typename: string | null;
  readonly status: number | null;

  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(`${code}: ${message}`, details.cause === undefined ? {} : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.field = details.field ?? null;
    this.typename = details.typename ?? null;
    this.status = details.status ?? null;
  }
}

/** NOT_FOUND: the user, blob or entry does not exist in the caller's project. */
export class NotFoundError extends PowermemoError {}

/** ALREADY_EXISTS: e.g. a user id or a topic/sub-topic that is taken. */
export class AlreadyExistsError extends PowermemoError {}

/** INVALID_INPUT or BAD_USER_INPUT; `field` names the offending input. */
export class InvalidInputError extends PowermemoError {}

/** LLM_UNAVAILABLE: the server's LLM gave no usable answer, even after its retries. */
export class LLMUnavailableError extends PowermemoError {}

/** UNAUTHENTICATED (HTTP 401, or a websocket closed with 4403): missing or bad key. */
export class AuthenticationError extends PowermemoError {}

/** FORBIDDEN: the key may not do this (e.g. the root token on project data). */
export class ForbiddenError extends PowermemoError {}

/** RATE_LIMITED (HTTP 429); `retryAfter` is the server's Retry-After, in seconds. */
export class RateLimitedError extends PowermemoError {
  readonly retryAfter: number | null;

  constructor(code: string, message: string, details: ErrorDetails & { retryAfter?: number | null } = {}) {
    super(code, message, details);
    this.retryAfter = details.retryAfter ?? null;
  }
}

/**
 * CONNECTION_FAILED or TIMEOUT: the server could not be reached or did not answer in time,
 * or a subscription stayed down through all its retries; `cause` says why.
 */
export class ConnectionFailedError extends PowermemoError {}

const BY_CODE: Record<string, typeof PowermemoError> = {
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  INVALID_INPUT: InvalidInputError,
  BAD_USER_INPUT: InvalidInputError,
  LLM_UNAVAILABLE: LLMUnavailableError,
  UNAUTHENTICATED: AuthenticationError,
  FORBIDDEN: ForbiddenError,
  CONNECTION_FAILED: ConnectionFailedError,
  TIMEOUT: ConnectionFailedError,
};
const BY_STATUS: Record<number, string> = {
  401: "UNAUTHENTICATED",
  403: "FORBIDDEN",
  429: "RATE_LIMITED",
};

/** The error for a code: its subclass, or PowermemoError for codes without one. */
export function errorFor(
  code: string,
  message: string,
  details: ErrorDetails & { retryAfter?: number | null } = {},
): PowermemoError {
  if (code === "RATE_LIMITED") {
    return new RateLimitedError(code, message, details);
  }
  const ErrorClass = BY_CODE[code] ?? PowermemoError;
  return new ErrorClass(code, message, details);
}

/** A result-union member implementing `Error`: `{__typename, code, message, field?}`. */
export function fromUnionMember(member: {
  __typename?: string;
  code: string;
  message: string;
  field?: string | null;
}): PowermemoError {
  return errorFor(member.code, member.message, {
    field: member.field ?? null,
    typename: member.__typename ?? null,
  });
}

interface GraphQLErrorShape {
  message?: unknown;
  extensions?: { code?: unknown; field?: unknown } | null;
}

/** Top-level `errors`: the first one decides (`extensions.code`, `extensions.field`). */
export function fromGraphQLErrors(
  errors: readonly unknown[] | null | undefined,
  details: { status?: number | null; retryAfter?: number | null } = {},
): PowermemoError {
  const first = (errors?.[0] ?? {}) as GraphQLErrorShape;
  const status = details.status ?? null;
  const extensions = first.extensions ?? {};
  let code = typeof extensions.code === "string" ? extensions.code : status ? BY_STATUS[status] : undefined;
  if (code === undefined) {
    // Parse and validation errors carry no code (GraphQL reports them as they are).
    code = status === null || status < 500 ? "GRAPHQL_ERROR" : `HTTP_${status}`;
  }
  const message = typeof first.message === "string" ? first.message : status ? `HTTP ${status}` : "unknown error";
  const field = typeof extensions.field === "string" ? extensions.field : null;
  return errorFor(code, message, { field, status, retryAfter: details.retryAfter ?? null });
}

/** A refusal whose body is not GraphQL-shaped (e.g. a proxy in front of the server). */
export function fromHttpStatus(status: number, message: string, retryAfter: number | null = null): PowermemoError {
  return errorFor(BY_STATUS[status] ?? `HTTP_${status}`, message, { status, retryAfter });
}
