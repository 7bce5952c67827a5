// @powermemo/client: the TypeScript client of a Powermemo GQL server.

export { Powermemo, type PowermemoOptions } from "./client.js";
export {
  AlreadyExistsError,
  AuthenticationError,
  ConnectionFailedError,
  ForbiddenError,
  InvalidInputError,
  LLMUnavailableError,
  NotFoundError,
  PowermemoError,
  RateLimitedError,
  type ErrorDetails,
} from "./errors.js";
export { CHANGE_KINDS } from "./models.js";
export type {
  Blob,
  ChangeKind,
  ChatMessage,
  Context,
  ErrorCode,
  Event,
  Flush,
  FlushOutcome,
  FlushResult,
  FlushStatus,
  FlushTrigger,
  ProfileChange,
  ProfileEntry,
  User,
} from "./models.js";
export { ProfileUpdates, type RetryOptions, type WebSocketImpl } from "./subscriptions.js";
export { endpoints } from "./transport.js";
