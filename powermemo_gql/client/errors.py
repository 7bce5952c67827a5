"""Typed exceptions for what the server refuses, each carrying its GraphQL error code.

Both shapes of a server error map here: a member of a mutation's result union (a type
implementing `Error`, e.g. `NotFound`) and a top-level error (`extensions.code`, e.g.
`UNAUTHENTICATED` on HTTP 401 or `BAD_USER_INPUT` for a query argument).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PowermemoError(Exception):
    """Something the server refused or could not do.

    `code` is the GraphQL error code (`NOT_FOUND`, `UNAUTHENTICATED`, `DATABASE_BUSY`,
    `INTERNAL_SERVER_ERROR`, ...), `field` the offending input when the server names one,
    `typename` the union member that carried it (e.g. `NotFound`), `status` the
    HTTP status when the request was refused before GraphQL ran, and `retry_after` the
    server's `Retry-After` in seconds when it sent one (see RateLimitedError).
    """

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        *,
        typename: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.typename = typename
        self.status = status
        self.retry_after = retry_after


class NotFoundError(PowermemoError):
    """NOT_FOUND: the user, blob or entry does not exist in the caller's project."""


class AlreadyExistsError(PowermemoError):
    """ALREADY_EXISTS: e.g. a user id or a topic/sub-topic that is taken."""


class InvalidInputError(PowermemoError):
    """INVALID_INPUT or BAD_USER_INPUT; `field` names the offending input."""


class LLMUnavailableError(PowermemoError):
    """LLM_UNAVAILABLE: the server's LLM gave no usable answer, even after its retries."""


class AuthenticationError(PowermemoError):
    """UNAUTHENTICATED (HTTP 401, or a websocket closed with 4403): missing or bad key."""


class ForbiddenError(PowermemoError):
    """FORBIDDEN: the key may not do this (e.g. a project key on a root-only operation)."""


class RateLimitedError(PowermemoError):
    """RATE_LIMITED (HTTP 429): the key passed its requests per minute.

    `retry_after` is the server's `Retry-After`, in seconds, when it sent one.
    """


class ConnectionFailedError(PowermemoError):
    """The server could not be reached or did not answer in time (code CONNECTION_FAILED or
    TIMEOUT), or a subscription stayed down through all its retries; `__cause__` says why."""


_BY_CODE: dict[str, type[PowermemoError]] = {
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "INVALID_INPUT": InvalidInputError,
    "BAD_USER_INPUT": InvalidInputError,
    "LLM_UNAVAILABLE": LLMUnavailableError,
    "UNAUTHENTICATED": AuthenticationError,
    "FORBIDDEN": ForbiddenError,
    "RATE_LIMITED": RateLimitedError,
}
_BY_STATUS = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 429: "RATE_LIMITED"}


def error_class(code: str) -> type[PowermemoError]:
    """The exception for a code: its subclass, or PowermemoError for codes without one."""
    return _BY_CODE.get(code, PowermemoError)


def from_union_member(member: Mapping[str, Any]) -> PowermemoError:
    """A result-union member implementing `Error`: `{__typename, code, message, field?}`."""
    code = str(member["code"])
    return error_class(code)(
        code, str(member["message"]), member.get("field"), typename=member.get("__typename")
    )


def from_graphql_errors(
    errors: list[Any] | None,
    *,
    status: int | None = None,
    retry_after: float | None = None,
) -> PowermemoError:
    """Top-level `errors`: the first one decides (`extensions.code`, `extensions.field`)."""
    first: Mapping[str, Any] = errors[0] if errors and isinstance(errors[0], Mapping) else {}
    extensions = first.get("extensions") or {}
    code = extensions.get("code") or (_BY_STATUS.get(status) if status else None)
    if code is None:
        # Parse or validation errors carry no code (GraphQL reports them as they are).
        code = "GRAPHQL_ERROR" if status is None or status < 500 else f"HTTP_{status}"
    message = first.get("message") or (f"HTTP {status}" if status else "unknown error")
    return error_class(str(code))(
        str(code), str(message), extensions.get("field"), status=status, retry_after=retry_after
    )


def from_http_status(
    status: int, message: str, *, retry_after: float | None = None
) -> PowermemoError:
    """A refusal whose body is not GraphQL-shaped (e.g. a proxy in front of the server)."""
    code = _BY_STATUS.get(status, f"HTTP_{status}")
    return error_class(code)(code, message, status=status, retry_after=retry_after)
