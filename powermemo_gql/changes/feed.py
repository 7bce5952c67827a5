"""Live delivery of the change feed: the database is the record, pub/sub only says "look".

Per user, each instance keeps one watch while anybody follows that user: it subscribes,
then reads the feed once per notification and hands what it read to every follower. A
follower joins the watch first, then reads the feed from its own cursor, then takes what
the watch hands it, skipping what it has already seen. A lost notification delays a
change until the next one; a broken broker ends every follower's stream, and clients
resume with `since`, missing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable

from powermemo_gql.changes.models import Change
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.pubsub import PubSub
from powermemo_gql.core.uow import unit_of_work

BATCH = 100
# Changes a follower may have waiting before it drops them and reads the database itself.
MAX_WAITING = 1000

logger = logging.getLogger(__name__)


class FeedInterrupted(ConnectionError):
    """Live delivery stopped (broker or database trouble): resume with the last cursor."""


def channel(user_id: uuid.UUID) -> str:
    return f"powermemo:changes:{user_id}"


class _Follower:
    """What the watch has read for one follower and it has not taken yet."""

    def __init__(self) -> None:
        self._waiting: deque[Change] = deque()
        self._wake = asyncio.Event()
        self._behind = False
        self._error: BaseException | None = None

    def hand(self, changes: list[Change]) -> None:
        if self._behind:
            return
        if len(self._waiting) + len(changes) > MAX_WAITING:
            self._waiting.clear()
            self._behind = True
        else:
            self._waiting.extend(changes)
        self._wake.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._wake.set()

    async def take(self) -> list[Change] | None:
        """The changes handed over since the last take; None when the follower fell too far
        behind and must read the feed itself."""
        while not (self._waiting or self._behind or self._error):
            self._wake.clear()
            await self._wake.wait()
        if self._behind:
            self._behind = False
            return None
        if self._waiting:
            taken = list(self._waiting)
            self._waiting.clear()
            return taken
        raise FeedInterrupted("live delivery of the change feed stopped") from self._error


class _Watch:
    """One user's feed on this instance: one subscription and one read per change."""

    def __init__(self, feed: Feed, user_id: uuid.UUID) -> None:
        self.user_id = user_id
        self.followers: set[_Follower] = set()
        self.stopping = False
        self.ready: asyncio.Future[BaseException | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._feed = feed
        self.task = asyncio.create_task(self._run(), name=f"feed-watch-{user_id}")

    async def _run(self) -> None:
        try:
            async with self._feed.pubsub.listen(channel(self.user_id)) as notifications:
                # Read the position only once subscribed: nothing committed later is missed.
                cursor = await self._feed.latest(self.user_id)
                self.ready.set_result(None)
                async for _ in notifications:
                    changes = [c async for c in self._feed.read(self.user_id, cursor)]
                    if changes:
                        cursor = changes[-1].seq or cursor
                        for follower in self.followers:
                            follower.hand(changes)
            raise FeedInterrupted("the notifications ended")
        except asyncio.CancelledError:
            # Stopped (the last follower left, or shutdown): any follower still here ends too.
            self._end(FeedInterrupted("stopped watching the change feed"))
            raise
        except Exception as exc:
            logger.warning("stopped watching the feed of user %s: %r", self.user_id, exc)
            self._end(exc)

    def _end(self, error: BaseException) -> None:
        self._feed.forget(self)
        if not self.ready.done():
            self.ready.set_result(error)
        for follower in self.followers:
            follower.fail(error)


async def _each(changes: list[Change]) -> AsyncIterator[Change]:
    for change in changes:
        yield change


class Feed:
    def __init__(self, sessions: SessionFactory, pubsub: PubSub) -> None:
        self._sessions = sessions
        self.pubsub = pubsub
        self._watches: dict[uuid.UUID, _Watch] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        # In-process effects of a committed memory change (the recall indexer's poke).
        self.listeners: list[Callable[[uuid.UUID], None]] = []

    async def notify(self, user_id: uuid.UUID) -> None:
        """Tell followers of this user that the feed grew (after the commit that grew it).

        Never raises: the change is committed already, and a follower that missed this
        notification reads it at the next one or when it resumes with its cursor.
        """
        for listener in self.listeners:
            try:
                listener(user_id)
            except Exception:
                logger.warning("a change listener failed for user %s", user_id, exc_info=True)
        try:
            await self.pubsub.publish(channel(user_id), {"user": str(user_id)})
        except Exception:
            logger.warning("could not notify followers of user %s", user_id, exc_info=True)

    async def latest(self, user_id: uuid.UUID) -> int:
        async with unit_of_work(self._sessions) as session:
            return await ChangeRepository(session).latest_seq(user_id)

    async def follow(self, user_id: uuid.UUID, after_seq: int) -> AsyncIterator[Change]:
        """Every change after `after_seq` (the user's own numbering), in order, then each
        new one as it is committed."""
        async with self._following(user_id) as follower:
            last = after_seq
            handed: list[Change] | None = None  # None: read the database from `last`
            while True:
                changes = self.read(user_id, last) if handed is None else _each(handed)
                async for change in changes:
                    # Handed changes may overlap what this follower read for itself.
                    if change.seq is not None and change.seq > last:
                        last = change.seq
                        yield change
                handed = await follower.take()  # None again when it fell too far behind

    async def read(self, user_id: uuid.UUID, after_seq: int) -> AsyncIterator[Change]:
        while True:
            async with unit_of_work(self._sessions) as session:
                batch = await ChangeRepository(session).after(user_id, after_seq, BATCH)
            for change in batch:
                yield change
            if len(batch) < BATCH:
                return
            after_seq = batch[-1].seq or after_seq

    def forget(self, watch: _Watch) -> None:
        if self._watches.get(watch.user_id) is watch:
            del self._watches[watch.user_id]

    async def close(self) -> None:
        for watch in list(self._watches.values()):
            self._stop(watch)
        await asyncio.gather(*self._stopping, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _following(self, user_id: uuid.UUID) -> AsyncIterator[_Follower]:
        watch = self._watches.get(user_id)
        if watch is None:
            watch = self._watches[user_id] = _Watch(self, user_id)
        follower = _Follower()
        watch.followers.add(follower)
        try:
            error = await asyncio.shield(watch.ready)
            if error is not None:
                raise FeedInterrupted("could not watch the change feed") from error
            yield follower
        finally:
            watch.followers.discard(follower)
            if not watch.followers:
                self._stop(watch)

    def _stop(self, watch: _Watch) -> None:
        self.forget(watch)
        if not watch.task.done() and not watch.stopping:
            watch.stopping = True  # once: a second cancel would cut its unsubscribe short
            watch.task.cancel()
            # Keep the task referenced until its unsubscribe has run.
            self._stopping.add(watch.task)
            watch.task.add_done_callback(self._stopping.discard)
