"""Following the change feed: one watch per user per instance, shared by its followers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from powermemo_gql.changes import feed as feed_module
from powermemo_gql.changes.feed import Feed, FeedInterrupted
from powermemo_gql.changes.models import Change, ChangeKind
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.pubsub import BrokerLost, Message, PubSub
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.resources import Resources
from powermemo_gql.users.models import User
from tests.support import ProjectHandle


class CountingPubSub:
    """The app's broker, counting the subscriptions opened through it."""

    def __init__(self, inner: PubSub) -> None:
        self.inner = inner
        self.opened = 0
        self.open_now = 0

    async def publish(self, channel: str, message: Message) -> None:
        await self.inner.publish(channel, message)

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        self.opened += 1
        self.open_now += 1
        try:
            async with self.inner.listen(channel) as messages:
                yield messages
        finally:
            self.open_now -= 1

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


class CountingFeed(Feed):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads = 0

    async def read(self, user_id: uuid.UUID, after_seq: int) -> AsyncIterator[Change]:
        self.reads += 1
        async for change in super().read(user_id, after_seq):
            yield change


@pytest.fixture
async def user_ids(project: ProjectHandle, app: Starlette) -> tuple[uuid.UUID, uuid.UUID]:
    await project.api.ok(
        'mutation { a: createUser(input: {userId: "alice"}) { __typename } '
        'b: createUser(input: {userId: "bob"}) { __typename } }'
    )
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        users = {u.external_id: u for u in (await session.scalars(select(User))).all()}
    return users["alice"].id, users["bob"].id


@pytest.fixture
async def feed(app: Starlette) -> AsyncIterator[CountingFeed]:
    resources: Resources = app.state.resources
    counted = CountingFeed(resources.sessions, CountingPubSub(resources.pubsub))
    yield counted
    await counted.close()


async def _append(app: Starlette, feed: Feed, user_id: uuid.UUID, *values: str) -> None:
    """One committed change per value, each followed by its notification."""
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        user = await session.get_one(User, user_id)
    for value in values:
        async with unit_of_work(resources.sessions) as session:
            await ChangeRepository(session).append(
                [
                    Change(
                        project_id=user.project_id,
                        user_id=user_id,
                        kind=ChangeKind.ENTRY_ADDED.value,
                        new_value=value,
                    )
                ]
            )
        await feed.notify(user_id)


async def _take(stream: AsyncIterator[Change], count: int) -> list[str | None]:
    return [(await asyncio.wait_for(anext(stream), timeout=10)).new_value for _ in range(count)]


async def _watching(feed: Feed, user_id: uuid.UUID, followers: int) -> None:
    """Until `followers` followers wait on a live watch of the user (10 s at most)."""
    for _ in range(1000):
        if feed.live_followers(user_id) == followers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the followers never started watching")


def _pubsub(feed: CountingFeed) -> CountingPubSub:
    assert isinstance(feed.pubsub, CountingPubSub)
    return feed.pubsub


async def test_followers_of_a_user_share_one_subscription_and_one_read_per_change(
    app: Starlette, feed: CountingFeed, user_ids: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = user_ids
    streams = [feed.follow(alice, 0) for _ in range(5)]
    pending = [asyncio.ensure_future(_take(s, 3)) for s in streams]
    for _ in range(1000):  # every follower has caught up and waits for live changes
        if feed.reads == 5 and all(not p.done() for p in pending):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert feed.reads == 5

    await _append(app, feed, alice, "one", "two", "three")

    for received in await asyncio.gather(*pending):
        assert received == ["one", "two", "three"]
    assert _pubsub(feed).opened == 1
    # Five catch-up reads, then one read per change for all five followers together.
    assert feed.reads <= 5 + 3
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    assert feed.watched == 0
    for _ in range(1000):
        if _pubsub(feed).open_now == 0:
            break
        await asyncio.sleep(0.01)
    assert _pubsub(feed).open_now == 0


async def test_a_late_follower_gets_history_then_live_changes_once_each(
    app: Starlette, feed: CountingFeed, user_ids: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, bob = user_ids
    early = feed.follow(alice, 0)
    early_first = asyncio.ensure_future(_take(early, 2))
    await asyncio.sleep(0.2)
    await _append(app, feed, alice, "a1", "a2")
    await _append(app, feed, bob, "b1")  # another user's changes go to its own followers
    assert await early_first == ["a1", "a2"]

    late = feed.follow(alice, 0)
    assert await _take(late, 2) == ["a1", "a2"]
    await _append(app, feed, alice, "a3", "a4")
    assert await _take(late, 2) == ["a3", "a4"]
    assert await _take(early, 2) == ["a3", "a4"]
    # Nothing twice: the next change is the next one either follower gets.
    await _append(app, feed, alice, "a5")
    assert await _take(late, 1) == ["a5"]
    assert await _take(early, 1) == ["a5"]
    assert _pubsub(feed).opened == 1
    for stream in (early, late):
        await stream.aclose()  # type: ignore[attr-defined]


async def test_a_follower_that_falls_far_behind_still_gets_every_change_in_order(
    app: Starlette,
    feed: CountingFeed,
    user_ids: tuple[uuid.UUID, uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_module, "MAX_WAITING", 3)
    alice, _ = user_ids
    slow = feed.follow(alice, 0)
    fast = feed.follow(alice, 0)
    first = asyncio.ensure_future(_take(slow, 1))
    fast_all = asyncio.ensure_future(_take(fast, 10))
    await asyncio.sleep(0.2)
    values = [f"v{n}" for n in range(10)]
    await _append(app, feed, alice, *values)
    # The slow one took a single change while ten were handed out; its backlog overflowed.
    assert await first == ["v0"]
    assert await fast_all == values
    assert await _take(slow, 9) == values[1:]
    for stream in (slow, fast):
        await stream.aclose()  # type: ignore[attr-defined]


class BreakableBroker:
    """An in-process broker whose listeners can all be broken at once."""

    def __init__(self, inner: PubSub) -> None:
        self.inner = inner
        self._broken: list[asyncio.Future[None]] = []

    async def publish(self, channel: str, message: Message) -> None:
        await self.inner.publish(channel, message)

    def listen(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        return self._listen(channel)

    @asynccontextmanager
    async def _listen(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        broken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._broken.append(broken)
        async with self.inner.listen(channel) as messages:

            async def until_broken() -> AsyncIterator[Message]:
                while True:
                    next_message = asyncio.ensure_future(anext(messages))
                    either: list[asyncio.Future[Any]] = [next_message, broken]
                    await asyncio.wait(either, return_when="FIRST_COMPLETED")
                    if broken.done():
                        next_message.cancel()
                        raise BrokerLost("broken on purpose")
                    yield next_message.result()

            yield until_broken()

    def break_all(self) -> None:
        for broken in self._broken:
            if not broken.done():
                broken.set_result(None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        await self.inner.close()


async def test_a_broken_broker_interrupts_every_follower_then_a_new_follow_works(
    app: Starlette, user_ids: tuple[uuid.UUID, uuid.UUID]
) -> None:
    resources: Resources = app.state.resources
    broker = BreakableBroker(resources.pubsub)
    feed = Feed(resources.sessions, broker)
    alice, _ = user_ids
    streams = [feed.follow(alice, 0) for _ in range(3)]
    pending = [asyncio.ensure_future(anext(s)) for s in streams]
    await _watching(feed, alice, 3)
    broker.break_all()
    for waiting in pending:
        with pytest.raises(FeedInterrupted):
            await asyncio.wait_for(waiting, timeout=5)
    assert feed.watched == 0

    again = feed.follow(alice, 0)
    receiving = asyncio.ensure_future(_take(again, 1))
    await asyncio.sleep(0.2)
    await _append(app, feed, alice, "after")
    assert await receiving == ["after"]
    await again.aclose()  # type: ignore[attr-defined]
    await feed.close()


async def test_closing_the_feed_ends_its_followers(
    app: Starlette, feed: CountingFeed, user_ids: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = user_ids
    stream = feed.follow(alice, 0)
    waiting = asyncio.ensure_future(anext(stream))
    await _watching(feed, alice, 1)
    await feed.close()
    with pytest.raises(FeedInterrupted):
        await asyncio.wait_for(waiting, timeout=5)
