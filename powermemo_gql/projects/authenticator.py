"""Bearer tokens to principals, with failed attempts throttled per client address."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.ratelimit import FailureThrottle
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.projects.auth import (
    API_KEY_PREFIX,
    Principal,
    authenticate,
    bearer_token,
    hash_api_key,
)
from powermemo_gql.projects.key_cache import KeyCache


@dataclass(frozen=True)
class Throttled:
    """Too many failed attempts from this address: not even looked up."""

    retry_after: int


# Where a lookup gets its session: the request's unit of work (core/request_unit.py), so
# authentication shares the request's connection; a unit of its own by default.
Work = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class Authenticator:
    def __init__(
        self,
        sessions: SessionFactory,
        root_token: str | None,
        throttle: FailureThrottle,
        cache: KeyCache,
    ) -> None:
        self._sessions = sessions
        self._root_token = root_token
        self._throttle = throttle
        self._cache = cache

    async def __call__(
        self, authorization: str | None, client: str | None, work: Work | None = None
    ) -> Principal | Throttled | None:
        """The caller, None for no or a wrong token, Throttled for an address that failed
        too often this minute (it costs no database lookup then)."""
        token = bearer_token(authorization)
        if token is None:
            return None
        if client is not None:
            wait = self._throttle.retry_after(client)
            if wait is not None:
                return Throttled(wait)
        key_hash = hash_api_key(token) if token.startswith(API_KEY_PREFIX) else None
        if key_hash is not None:
            cached = self._cache.get(key_hash)
            if cached is not None:
                return cached
        async with (work or self._own_unit)() as session:
            principal = await authenticate(session, token, self._root_token)
        if principal is None:
            if client is not None:
                await self._throttle.failed(client)
        elif key_hash is not None:
            # Only keys that worked: a wrong key must keep costing the throttle a failure.
            self._cache.put(key_hash, principal)
        return principal

    def _own_unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        return unit_of_work(self._sessions)

    async def close(self) -> None:
        await self._throttle.close()
