"""Revocations told to every instance, so that cached keys and open websockets of a revoked
key stop working.

HTTP requests use the key cache (projects/key_cache.py); a websocket authenticates once, at
connection_init. So a revocation (or a project's deletion) is published on the broker
after its commit, and each instance closes the sockets it holds for that key or project.
A message lost while the broker was away is made up for when the watch resubscribes: it
asks the database which of the keys it holds sockets for are still active. It also asks
every RECHECK_SECONDS, for revocations nobody could tell it of (the CLI without Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.pubsub import BrokerLost, Message, PubSub
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.projects.service import ProjectService

CHANNEL = "powermemo:revocations"
# After the broker broke, wait this long (doubling up to the cap) before listening again.
RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0
RECHECK_SECONDS = 60.0
# Cached keys (HTTP requests) are rechecked more often than sockets: it is one cheap query.
CACHE_RECHECK_SECONDS = 2.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Revocation:
    """API keys, and projects (every key of theirs), that no longer authenticate."""

    api_key_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    project_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    @classmethod
    def of_keys(cls, ids: Iterable[uuid.UUID]) -> Revocation:
        return cls(api_key_ids=frozenset(ids))

    @classmethod
    def of_project(cls, project_id: uuid.UUID) -> Revocation:
        return cls(project_ids=frozenset({project_id}))

    def to_message(self) -> Message:
        return {
            "apiKeys": sorted(str(i) for i in self.api_key_ids),
            "projects": sorted(str(i) for i in self.project_ids),
        }

    @classmethod
    def from_message(cls, message: Message) -> Revocation:
        """Tolerant: ids that do not parse are skipped (they would name nothing anyway)."""
        return cls(_ids(message.get("apiKeys")), _ids(message.get("projects")))


def _ids(values: object) -> frozenset[uuid.UUID]:
    if not isinstance(values, list):
        return frozenset()
    parsed = set()
    for value in values:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            parsed.add(uuid.UUID(value))
    return frozenset(parsed)


async def announce(pubsub: PubSub, revocation: Revocation) -> None:
    """Tell every instance (after the commit). Never raises: the revocation is committed,
    and an instance that misses this message finds out when its watch resubscribes."""
    try:
        await pubsub.publish(CHANNEL, revocation.to_message())
    except Exception:
        logger.warning("could not announce a revocation", exc_info=True)


class RevocationListener(Protocol):
    """What holds authenticated connections (the websocket registry)."""

    def open_key_ids(self) -> set[uuid.UUID]: ...

    async def revoked(self, revocation: Revocation) -> None: ...


class RevokedKeysCache(Protocol):
    """What remembers keys that worked (the authenticator's KeyCache)."""

    def forget(self, revocation: Revocation) -> None: ...

    def key_ids(self) -> set[uuid.UUID]: ...

    def clear(self) -> None: ...


class RevocationWatch:
    """One subscription per instance, for as long as the server runs."""

    def __init__(
        self,
        pubsub: PubSub,
        sessions: SessionFactory,
        listener: RevocationListener,
        recheck_seconds: float = RECHECK_SECONDS,
        caches: Sequence[RevokedKeysCache] = (),
        cache_recheck_seconds: float = CACHE_RECHECK_SECONDS,
    ) -> None:
        self._pubsub = pubsub
        self._sessions = sessions
        self._listener = listener
        self._caches = caches
        self._cache_recheck_seconds = cache_recheck_seconds
        self._recheck_seconds = recheck_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()  # set while subscribed

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name="revocation-watch"),
                asyncio.create_task(self._recheck_periodically(), name="revocation-recheck"),
            ]
            if self._caches:
                self._tasks.append(
                    asyncio.create_task(self._recheck_caches(), name="key-cache-recheck")
                )

    async def stop(self) -> None:
        for task in self._tasks:
            # Cancelled again until it ends: a cancellation that lands inside the Redis
            # client's SUBSCRIBE can be swallowed there, leaving the task listening on.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            if not task.cancelled() and task.exception() is not None:
                logger.warning("the revocation watch failed", exc_info=task.exception())
        self._tasks = []

    async def _recheck_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_seconds)
            try:
                await self._catch_up()
            except Exception:  # the database is away: next time
                logger.warning("could not recheck the keys of open websockets", exc_info=True)

    async def _recheck_caches(self) -> None:
        while True:
            await asyncio.sleep(self._cache_recheck_seconds)
            cached = set().union(*(cache.key_ids() for cache in self._caches))
            if not cached:
                continue
            try:
                async with unit_of_work(self._sessions) as session:
                    gone = await ProjectService(session).revoked_among(cached)
            except Exception:  # the database is away: the requests will say so
                logger.warning("could not recheck the cached API keys", exc_info=True)
                continue
            if gone:
                for cache in self._caches:
                    cache.forget(Revocation.of_keys(gone))

    async def _run(self) -> None:
        delay = RETRY_SECONDS
        while True:
            try:
                async with self._pubsub.listen(CHANNEL) as messages:
                    # Whatever was announced while nobody listened is unknown: start afresh.
                    for cache in self._caches:
                        cache.clear()
                    self.listening.set()
                    await self._catch_up()
                    delay = RETRY_SECONDS
                    async for message in messages:
                        revocation = Revocation.from_message(message)
                        for cache in self._caches:
                            cache.forget(revocation)
                        await self._listener.revoked(revocation)
            except asyncio.CancelledError:
                raise
            except BrokerLost:  # the broker logs its outage once; this retries quietly
                logger.debug("revocation watch interrupted; listening again", exc_info=True)
            except Exception:
                logger.warning("revocation watch interrupted; listening again", exc_info=True)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _catch_up(self) -> None:
        """Close what was revoked while nobody listened (first start: nothing is open)."""
        open_ids = self._listener.open_key_ids()
        if not open_ids:
            return
        async with unit_of_work(self._sessions) as session:
            gone = await ProjectService(session).revoked_among(open_ids)
        if gone:
            await self._listener.revoked(Revocation.of_keys(gone))
