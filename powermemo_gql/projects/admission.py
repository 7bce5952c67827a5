"""Who may make an HTTP request: its bearer token, the failure throttle and the key's rate
limit, decided once for every endpoint (/graphql, /mcp), each rendering a refusal in its
own error shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from powermemo_gql.core.db import database_trouble
from powermemo_gql.core.ratelimit import RateLimiter
from powermemo_gql.projects.auth import Principal, bearer_token
from powermemo_gql.projects.authenticator import Throttled

logger = logging.getLogger(__name__)

Authenticate = Callable[[str | None, str | None], Awaitable[Principal | Throttled | None]]


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


async def admit(
    authenticate: Authenticate,
    rate_limiter: RateLimiter,
    rate_limit_per_minute: int,
    authorization: str | None,
    client: str | None,
) -> Principal | Refusal:
    """The caller, or why not. The root token is not rate-limited."""
    try:
        principal = await authenticate(authorization, client)
    except Exception as exc:  # the key lookup needs the database
        trouble = database_trouble(exc)
        if trouble is None:
            raise
        logger.warning("authentication failed: %s", trouble[0], exc_info=True)
        return Refusal(503, trouble[0], trouble[1], {"Retry-After": "1"})
    if isinstance(principal, Throttled):
        return Refusal(
            429,
            "RATE_LIMITED",
            "too many failed authentications from this address",
            {"Retry-After": str(principal.retry_after)},
        )
    if principal is None:
        missing = bearer_token(authorization) is None
        return Refusal(
            401,
            "UNAUTHENTICATED",
            "Missing bearer token" if missing else "Invalid or revoked token",
            {"WWW-Authenticate": 'Bearer realm="powermemo"'},
        )
    if principal.api_key_id is None:
        return principal
    verdict = await rate_limiter.hit(str(principal.api_key_id))
    if not verdict.allowed:
        return Refusal(
            429,
            "RATE_LIMITED",
            f"more than {rate_limit_per_minute} requests this minute",
            {"Retry-After": str(verdict.retry_after)},
        )
    return principal
