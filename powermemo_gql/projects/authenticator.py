"""Bearer tokens to principals, with failed attempts throttled per client address."""

from __future__ import annotations

from dataclasses import dataclass

from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.ratelimit import FailureThrottle
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.projects.auth import Principal, authenticate, bearer_token


@dataclass(frozen=True)
class Throttled:
    """Too many failed attempts from this address: not even looked up."""

    retry_after: int


class Authenticator:
    def __init__(
        self, sessions: SessionFactory, root_token: str | None, throttle: FailureThrottle
    ) -> None:
        self._sessions = sessions
        self._root_token = root_token
        self._throttle = throttle

    async def __call__(
        self, authorization: str | None, client: str | None
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
        async with unit_of_work(self._sessions) as session:
            principal = await authenticate(session, token, self._root_token)
        if principal is None and client is not None:
            await self._throttle.failed(client)
        return principal

    async def close(self) -> None:
        await self._throttle.close()
