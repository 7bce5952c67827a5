"""Live updates never miss silently: a failed publish never slows the write, is retried,
wakes this instance's watch at once, and the catch-up check finds what another instance
failed to publish; a broker that refuses the subscription is BROKER_UNAVAILABLE."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.changes.feed import BrokerUnavailable, Feed
from powermemo_gql.core.pubsub import InMemoryPubSub, Message, PubSub
from powermemo_gql.resources import Resources
from powermemo_gql.users.models import User
from tests.integration.test_feed import _append, _take, _watching
from tests.support import ProjectHandle

# Long enough that only a retry or a local wake-up can deliver within the test's wait.
NEVER = 600.0


class FaultyBroker:
    """Delegates to `inner`, except that the first `failing` publishes raise (all of them
    when None), publishes hang while `hang` is set, and listen fails when `refuse` is set."""

    def __init__(self, inner: PubSub, failing: int | None = None) -> None:
        self.inner = inner
        self.failing = failing
        self.failed = 0
        self.published = 0
        self.hang = False
        self.refuse = False

    async def publish(self, channel: str, message: Message) -> None:
        if self.hang:
            await asyncio.Event().wait()  # a frozen broker: no answer, ever
        if self.failing is None or self.failed < self.failing:
            self.failed += 1
            raise ConnectionError("publish failed on purpose")
        self.published += 1
        await self.inner.publish(channel, message)

    def listen(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        return self._listen(channel)

    @asynccontextmanager
    async def _listen(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        if self.refuse:
            raise ConnectionError("subscribe failed on purpose")
        async with self.inner.listen(channel) as messages:
            yield messages

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


@pytest.fixture
async def alice(project: ProjectHandle, app: Starlette) -> uuid.UUID:
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        user = (await session.scalars(select(User).where(col(User.external_id) == "alice"))).one()
    return user.id


def _feed(app: Starlette, broker: PubSub, catch_up: float) -> Feed:
    resources: Resources = app.state.resources
    return Feed(resources.sessions, broker, catch_up)


async def test_a_publish_that_fails_on_another_instance_is_caught_up_within_the_period(
    app: Starlette, alice: uuid.UUID
) -> None:
    shared = InMemoryPubSub()
    # The writer's publishes all fail; the follower's link to the broker stays up.
    writer = _feed(app, FaultyBroker(shared, failing=None), NEVER)
    follower = _feed(app, shared, 0.2)
    stream = follower.follow(alice, 0)
    receiving = asyncio.ensure_future(_take(stream, 2))
    await _watching(follower, alice, 1)

    await _append(app, writer, alice, "lost-1", "lost-2")

    assert await receiving == ["lost-1", "lost-2"]
    await stream.aclose()  # type: ignore[attr-defined]
    await writer.close()
    await follower.close()


async def test_a_failed_publish_is_retried_until_it_goes_out(
    app: Starlette, alice: uuid.UUID
) -> None:
    shared = InMemoryPubSub()
    broker = FaultyBroker(shared, failing=3)
    writer = _feed(app, broker, 0.2)  # retries back off up to the catch-up period
    follower = _feed(app, shared, NEVER)  # no catch-up: only the notification can deliver
    stream = follower.follow(alice, 0)
    receiving = asyncio.ensure_future(_take(stream, 1))
    await _watching(follower, alice, 1)

    await _append(app, writer, alice, "retried")

    assert await receiving == ["retried"]
    assert broker.failed == 3
    assert broker.published == 1
    await stream.aclose()  # type: ignore[attr-defined]
    await writer.close()
    await follower.close()


async def test_a_failed_publish_wakes_the_watch_of_the_same_instance_at_once(
    app: Starlette, alice: uuid.UUID
) -> None:
    feed = _feed(app, FaultyBroker(InMemoryPubSub(), failing=None), NEVER)
    stream = feed.follow(alice, 0)
    receiving = asyncio.ensure_future(_take(stream, 1))
    await _watching(feed, alice, 1)

    await _append(app, feed, alice, "local")

    assert await receiving == ["local"]
    await stream.aclose()  # type: ignore[attr-defined]
    await feed.close()


async def test_notify_never_waits_for_a_frozen_broker(app: Starlette, alice: uuid.UUID) -> None:
    broker = FaultyBroker(InMemoryPubSub(), failing=0)
    feed = _feed(app, broker, 0.2)
    stream = feed.follow(alice, 0)
    receiving = asyncio.ensure_future(_take(stream, 1))
    await _watching(feed, alice, 1)
    broker.hang = True

    # The write has committed; its notification must not hold the request (a frozen broker
    # would hold it forever here, with no timeout of its own).
    await asyncio.wait_for(_append(app, feed, alice, "frozen"), timeout=5)

    assert await receiving == ["frozen"]  # the catch-up check found it
    await stream.aclose()  # type: ignore[attr-defined]
    await feed.close()


async def test_a_broker_that_refuses_the_subscription_is_broker_unavailable(
    app: Starlette, alice: uuid.UUID
) -> None:
    broker = FaultyBroker(InMemoryPubSub(), failing=0)
    broker.refuse = True
    feed = _feed(app, broker, NEVER)
    with pytest.raises(BrokerUnavailable):
        await anext(feed.follow(alice, 0))
    assert feed.watched == 0

    broker.refuse = False  # back: the next follower is served
    stream = feed.follow(alice, 0)
    receiving = asyncio.ensure_future(_take(stream, 1))
    await _watching(feed, alice, 1)
    await _append(app, feed, alice, "back")
    assert await receiving == ["back"]
    await stream.aclose()  # type: ignore[attr-defined]
    await feed.close()


async def test_the_catch_up_check_reads_nothing_when_nobody_is_behind(
    app: Starlette, alice: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    feed = _feed(app, InMemoryPubSub(), 0.05)
    original = feed.read

    async def counted(user_id: uuid.UUID, after_seq: int) -> AsyncIterator[object]:
        nonlocal reads
        reads += 1
        async for change in original(user_id, after_seq):
            yield change

    monkeypatch.setattr(feed, "read", counted)
    stream = feed.follow(alice, 0)
    receiving = asyncio.ensure_future(_take(stream, 1))
    await _watching(feed, alice, 1)
    await asyncio.sleep(0.5)  # about ten catch-up periods with nothing new
    assert reads == 1  # the follower's own first read; the checks found nobody behind
    await _append(app, feed, alice, "one")
    assert await receiving == ["one"]
    await stream.aclose()  # type: ignore[attr-defined]
    await feed.close()


class GatedBroker(FaultyBroker):
    """Each publish waits until the test opens the gate."""

    def __init__(self, inner: PubSub) -> None:
        super().__init__(inner, failing=0)
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def publish(self, channel: str, message: Message) -> None:
        self.started.set()
        await self.gate.wait()
        await super().publish(channel, message)


async def test_a_notify_during_its_users_publish_is_published_again(
    app: Starlette, alice: uuid.UUID
) -> None:
    broker = GatedBroker(InMemoryPubSub())
    feed = _feed(app, broker, NEVER)
    await feed.notify(alice)
    await asyncio.wait_for(broker.started.wait(), timeout=5)  # the first one is on its way
    # The reader woken by that first publish may read before this second commit.
    await feed.notify(alice)
    broker.gate.set()
    for _ in range(500):
        if broker.published == 2:
            break
        await asyncio.sleep(0.01)
    assert broker.published == 2
    await feed.close()
