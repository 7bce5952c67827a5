"""Live delivery of the change feed: the database is the record, pub/sub only says "look".

Per user, each instance keeps one watch while anybody follows that user: it subscribes,
then reads the feed once per notification and hands what it read to every follower. A
follower joins the watch first, then reads the feed from its own cursor, then takes what
the watch hands it, skipping what it has already seen.

Nothing is missed silently. Notifications are published after the commit by a background
publisher, so a slow or failing broker never slows the write; a failed publish wakes this
instance's watch at once and is retried. A notification lost anyway (a publish that
failed while another instance's subscription stayed up) is found by the catch-up check:
every `catch_up_seconds`, one query reads the users' change counters for all watched
users and wakes each watch that is behind. A broken broker ends every follower's stream,
and clients resume with `since`, missing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from powermemo_gql.changes.models import Change
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.pubsub import BrokerLost, PubSub
from powermemo_gql.core.uow import unit_of_work

BATCH = 100
# Changes a follower may have waiting before it drops them and reads the database itself.
MAX_WAITING = 1000
# Watched users whose counters one catch-up query reads (the IN list stays small).
CATCH_UP_CHUNK = 500
# Users waiting for their notification: past this, the oldest are dropped; the catch-up
# check finds their changes anyway.
MAX_UNPUBLISHED = 100_000
# How long closing waits for the notifications not published yet.
CLOSE_SECONDS = 1.0

logger = logging.getLogger(__name__)


class FeedInterrupted(ConnectionError):
    """Live delivery stopped (broker or database trouble): resume with the last cursor."""


class BrokerUnavailable(FeedInterrupted):
    """The broker did not take the subscription (down or frozen): try again shortly."""


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
    """One user's feed on this instance: one subscription and one read per wake-up."""

    def __init__(self, feed: Feed, user_id: uuid.UUID) -> None:
        self.user_id = user_id
        self.followers: set[_Follower] = set()
        self.stopping = False
        self.ready: asyncio.Future[BaseException | None] = (
            asyncio.get_running_loop().create_future()
        )
        # The seq this watch has read up to, and the highest the catch-up check has seen.
        self.cursor = 0
        self._seen = 0
        self._wake = asyncio.Event()
        self._feed = feed
        self.task = asyncio.create_task(self._run(), name=f"feed-watch-{user_id}")

    def poke(self, seen: int = 0) -> None:
        """Read the feed again: a notification came, was lost, or the counter is ahead."""
        self._seen = max(self._seen, seen)
        self._wake.set()

    async def _run(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    notifications = await stack.enter_async_context(
                        self._feed.pubsub.listen(channel(self.user_id))
                    )
                except Exception as exc:
                    raise BrokerUnavailable("could not subscribe on the broker") from exc
                # Read the position only once subscribed: nothing committed later is missed.
                self.cursor = await self._feed.latest(self.user_id)
                self.ready.set_result(None)
                await self._serve(notifications)
        except asyncio.CancelledError:
            # Stopped (the last follower left, or shutdown): any follower still here ends too.
            self._end(FeedInterrupted("stopped watching the change feed"))
            raise
        except Exception as exc:
            # A broker outage is logged once, by the broker, not once per watched user.
            broker = isinstance(exc, BrokerLost | BrokerUnavailable)
            log = logger.debug if broker else logger.warning
            log("stopped watching the feed of user %s: %r", self.user_id, exc)
            self._end(exc)

    async def _serve(self, notifications: AsyncIterator[object]) -> None:
        listening = asyncio.ensure_future(self._listen(notifications))
        woken: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        try:
            while True:
                if woken.done():
                    woken = asyncio.ensure_future(self._wake.wait())
                either: set[asyncio.Future[Any]] = {listening, woken}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if listening.done():
                    listening.result()  # the broker's error, if it broke
                    raise FeedInterrupted("the notifications ended")
                self._wake.clear()
                # Every change up to the counter read before this wake-up is committed, so
                # it is in this read; then the cursor is at least there.
                seen = self._seen
                changes = [c async for c in self._feed.read(self.user_id, self.cursor)]
                if changes:
                    self.cursor = max(self.cursor, changes[-1].seq or 0)
                    for follower in self.followers:
                        follower.hand(changes)
                self.cursor = max(self.cursor, seen)
        finally:
            woken.cancel()
            listening.cancel()
            await asyncio.gather(listening, woken, return_exceptions=True)

    async def _listen(self, notifications: AsyncIterator[object]) -> None:
        async for _ in notifications:
            self._wake.set()

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
    def __init__(
        self, sessions: SessionFactory, pubsub: PubSub, catch_up_seconds: float = 2.0
    ) -> None:
        self._sessions = sessions
        self.pubsub = pubsub
        self.catch_up_seconds = catch_up_seconds
        self._watches: dict[uuid.UUID, _Watch] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        # Users whose notification is not published yet, oldest first (a dict keeps order),
        # each with the number of its latest notify.
        self._unpublished: dict[uuid.UUID, int] = {}
        self._notified = 0
        self._publish_wake = asyncio.Event()
        self._all_published = asyncio.Event()
        self._all_published.set()
        self._publisher: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[None] | None = None
        # In-process effects of a committed memory change (the recall indexer's poke).
        self.listeners: list[Callable[[uuid.UUID], None]] = []

    def live_followers(self, user_id: uuid.UUID) -> int | None:
        """How many follow the user on a watch that is live (past its catch-up read);
        None while the user has no live watch here. For health checks and tests."""
        watch = self._watches.get(user_id)
        if watch is None or not watch.ready.done():
            return None
        return len(watch.followers)

    @property
    def watched(self) -> int:
        """How many users this instance watches (a follower of each is open)."""
        return len(self._watches)

    async def notify(self, user_id: uuid.UUID) -> None:
        """Tell followers of this user that the feed grew (after the commit that grew it).

        Never raises and never waits for the broker: the change is committed already. The
        background publisher sends the notification, retrying while the broker fails.
        """
        for listener in self.listeners:
            try:
                listener(user_id)
            except Exception:
                logger.warning("a change listener failed for user %s", user_id, exc_info=True)
        self._notified += 1
        self._unpublished.pop(user_id, None)
        self._unpublished[user_id] = self._notified
        if len(self._unpublished) > MAX_UNPUBLISHED:
            del self._unpublished[next(iter(self._unpublished))]
        self._all_published.clear()
        self._publish_wake.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish(), name="feed-publisher")

    async def _publish(self) -> None:
        retry_after = 0.0
        while True:
            await self._publish_wake.wait()
            self._publish_wake.clear()
            while self._unpublished:
                user_id, number = next(iter(self._unpublished.items()))
                try:
                    await self.pubsub.publish(channel(user_id), {"user": str(user_id)})
                except Exception as exc:
                    # The broker logs its outage once; here only what this instance can do:
                    # its own watch reads now, other instances' at their catch-up check.
                    logger.debug("could not notify followers of user %s: %r", user_id, exc)
                    for waiting in self._unpublished:
                        if (watch := self._watches.get(waiting)) is not None:
                            watch.poke()
                    retry_after = min(max(2 * retry_after, 0.1), self.catch_up_seconds)
                    await asyncio.sleep(retry_after)
                    continue
                retry_after = 0.0
                # A notify for this user while publishing asks for another publish: the
                # one sent may have been read before that notify's commit.
                if self._unpublished.get(user_id) == number:
                    del self._unpublished[user_id]
            self._all_published.set()

    async def _catch_up(self) -> None:
        """While anybody follows: wake each watch whose user's change counter is ahead."""
        while self._watches:
            await asyncio.sleep(self.catch_up_seconds)
            try:
                await self._check_counters()
            except Exception as exc:  # the database's trouble: the next period tries again
                logger.debug("the change feed catch-up check failed: %r", exc)

    async def _check_counters(self) -> None:
        watches = [w for w in self._watches.values() if w.ready.done()]
        for start in range(0, len(watches), CATCH_UP_CHUNK):
            chunk = {w.user_id: w for w in watches[start : start + CATCH_UP_CHUNK]}
            async with unit_of_work(self._sessions) as session:
                counters = await ChangeRepository(session).counters(list(chunk))
            for user_id, seq in counters.items():
                watch = chunk[user_id]
                if seq > watch.cursor:
                    watch.poke(seq)

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
        publisher = self._publisher
        if publisher is not None and not publisher.done():
            # A moment for the last notifications (a CLI run that just wrote); what is left
            # after it, other instances' catch-up checks find.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await self._all_published.wait()
        tasks = [t for t in (publisher, self._catching_up) if t is not None]
        for task in tasks:
            task.cancel()
        for watch in list(self._watches.values()):
            self._stop(watch)
        await asyncio.gather(*tasks, *self._stopping, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _following(self, user_id: uuid.UUID) -> AsyncIterator[_Follower]:
        watch = self._watches.get(user_id)
        if watch is None:
            watch = self._watches[user_id] = _Watch(self, user_id)
            if self._catching_up is None or self._catching_up.done():
                self._catching_up = asyncio.create_task(self._catch_up(), name="feed-catch-up")
        follower = _Follower()
        watch.followers.add(follower)
        try:
            error = await asyncio.shield(watch.ready)
            if isinstance(error, BrokerUnavailable):
                raise BrokerUnavailable("the broker did not take the subscription") from error
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
