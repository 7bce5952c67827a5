"""profileUpdated over graphql-transport-ws, resuming from the last cursor after a drop."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from gql.transport.exceptions import TransportError
from websockets.exceptions import ConnectionClosed, WebSocketException

from powermemo_gql.client import operations
from powermemo_gql.client.connection import AsyncClosing, translated, ws_client
from powermemo_gql.client.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PowermemoError,
)
from powermemo_gql.client.models import ChangeKind, ProfileChange

logger = logging.getLogger(__name__)

# The server closes a socket whose connection_init carries no valid token with 4403.
_UNAUTHORIZED_CLOSE = 4403
# Retrying these cannot help: the key, the user or the arguments are wrong.
_FINAL = (AuthenticationError, ForbiddenError, NotFoundError, InvalidInputError)


@dataclass(frozen=True)
class Retry:
    """How a subscription comes back after a drop: up to `attempts` reconnections in a row
    that receive nothing, waiting `backoff * 2**n` seconds (at most `max_backoff`, plus up
    to 10% jitter) before each. The defaults keep trying for about a minute and a half."""

    attempts: int = 8
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, failures: int) -> float:
        base = min(self.max_backoff, self.backoff * 2.0 ** (failures - 1))
        return base * (1 + 0.1 * random.random())  # noqa: S311 - jitter, not cryptography


class ProfileUpdates(AsyncClosing):
    """The changes of one user's memory, as they are committed; an async iterator.

    Connects on the first `anext`. Without `since`, it first reads the feed's current end
    (`user.changesCursor`) and follows from there, so a drop before the first change loses
    nothing either. After a drop (network, server restart, broker failure) it reconnects
    with `since=` the last cursor it yielded; `cursor` is that position, to keep if the
    process itself restarts. Use it as `async with` (or call `aclose()`) to close the
    socket when leaving the loop early.
    """

    def __init__(
        self,
        *,
        ws_url: str,
        api_key: str,
        user_id: str,
        since: str | None,
        kinds: Sequence[ChangeKind | str] | None,
        current_cursor: Callable[[], Awaitable[str]],
        retry: Retry,
        validate: bool,
        connect_timeout: float,
    ) -> None:
        self.cursor = since
        self.user_id = user_id
        self._ws_url = ws_url
        self._api_key = api_key
        self._kinds = kinds
        self._current_cursor = current_cursor
        self._retry = retry
        self._validate = validate
        self._connect_timeout = connect_timeout
        self._changes = self._follow()

    def __aiter__(self) -> ProfileUpdates:
        return self

    async def __anext__(self) -> ProfileChange:
        return await anext(self._changes)

    async def aclose(self) -> None:
        await self._changes.aclose()

    async def __aenter__(self) -> ProfileUpdates:
        await self.start()
        return self

    async def start(self) -> str:
        """Pin the starting position now, if `since` was not given: every change committed
        after this returns is delivered. Returns the cursor. `async with` calls it; a bare
        `async for` pins it at the first `anext`."""
        if self.cursor is None:
            self.cursor = await self._current_cursor()
        return self.cursor

    async def _follow(self) -> AsyncGenerator[ProfileChange, None]:
        await self.start()
        failures = 0
        while True:
            try:
                async with aclosing(self._connection(self.cursor)) as changes:
                    async for change in changes:
                        failures = 0
                        self.cursor = change.cursor
                        yield change
                reason: BaseException | str = "the server ended the subscription"
            except _FINAL:
                raise
            except (PowermemoError, TransportError, WebSocketException, OSError) as error:
                reason = error
            failures += 1
            if failures > self._retry.attempts:
                raise ConnectionFailedError(
                    "CONNECTION_FAILED",
                    f"profileUpdated({self.user_id!r}) stayed down after "
                    f"{self._retry.attempts} reconnections: {reason}",
                ) from (reason if isinstance(reason, BaseException) else None)
            delay = self._retry.delay(failures)
            logger.info(
                "profileUpdated(%r) dropped (%s); reconnecting in %.1fs from %s",
                self.user_id,
                reason,
                delay,
                self.cursor,
            )
            await asyncio.sleep(delay)

    async def _connection(self, since: str | None) -> AsyncGenerator[ProfileChange, None]:
        """One websocket: connect, authenticate in connection_init, follow from `since`."""
        client = ws_client(
            self._ws_url,
            self._api_key,
            connect_timeout=self._connect_timeout,
            validate=self._validate,
        )
        request = operations.profile_updated(self.user_id, since, self._kinds)
        try:
            with translated():
                async with client as session:
                    async for data in session.subscribe(request):
                        yield ProfileChange.from_json(data["profileUpdated"])
        except ConnectionFailedError as error:
            if _close_code(error) == _UNAUTHORIZED_CLOSE:
                raise AuthenticationError(
                    "UNAUTHENTICATED", "missing, invalid or revoked token"
                ) from error
            raise


def _close_code(error: BaseException) -> int | None:
    """The websocket close code somewhere in an exception's chain, if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionClosed) and seen.rcvd is not None:
            return seen.rcvd.code
        seen = seen.__cause__ or seen.__context__
    return None
