"""The broker the server runs with: in-process by default, Redis when configured."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from powermemo_gql.core.pubsub import (
    BrokerLost,
    InMemoryPubSub,
    PubSub,
    RedisPubSub,
    create_pubsub,
)
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
async def pubsub() -> AsyncIterator[PubSub]:
    broker = create_pubsub(TEST_REDIS_URL)
    yield broker
    await broker.close()


def test_broker_follows_configuration() -> None:
    assert isinstance(create_pubsub(None), InMemoryPubSub)
    assert isinstance(create_pubsub("redis://127.0.0.1:6379/15"), RedisPubSub)


async def test_messages_published_after_listen_arrive_in_order(pubsub: PubSub) -> None:
    channel = f"test:{uuid.uuid4().hex}"
    async with pubsub.listen(channel) as messages:
        # The subscription is live once listen() is entered: nothing to wait for.
        for n in range(3):
            await pubsub.publish(channel, {"n": n})
        received = [await asyncio.wait_for(anext(messages), timeout=5) for _ in range(3)]
    assert received == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_other_channels_are_not_heard(pubsub: PubSub) -> None:
    channel = f"test:{uuid.uuid4().hex}"
    async with pubsub.listen(channel) as messages:
        await pubsub.publish(channel + ":other", {"n": 1})
        await pubsub.publish(channel, {"n": 2})
        assert await asyncio.wait_for(anext(messages), timeout=5) == {"n": 2}


async def test_ping(pubsub: PubSub) -> None:
    assert await pubsub.ping()


async def test_unreachable_redis_pings_false() -> None:
    broker = RedisPubSub("redis://127.0.0.1:1/0")
    try:
        assert not await broker.ping()
    finally:
        await broker.close()


@pytest.fixture
async def redis_broker() -> AsyncIterator[RedisPubSub]:
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis (POWERMEMO_TEST_REDIS_URL)")
    broker = RedisPubSub(TEST_REDIS_URL)
    yield broker
    await broker.close()


@pytest.fixture
async def redis_admin() -> AsyncIterator[Redis]:
    """A plain Redis client beside the broker, to act on the server directly."""
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis (POWERMEMO_TEST_REDIS_URL)")
    admin = Redis.from_url(TEST_REDIS_URL)
    yield admin
    await admin.aclose()


@pytest.fixture
def channel() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_one_redis_connection_carries_every_subscription(
    redis_broker: RedisPubSub, redis_admin: Redis
) -> None:
    channels = [f"test:{uuid.uuid4().hex}" for _ in range(50)]
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(redis_broker.listen(c)) for c in channels]
        named = [
            c
            for c in await redis_admin.client_list()
            if c.get("name") == redis_broker.subscriber_name
        ]
        assert len(named) == 1
        for n, channel in enumerate(channels):
            await redis_broker.publish(channel, {"n": n})
        received = [await asyncio.wait_for(anext(s), timeout=5) for s in streams]
        assert received == [{"n": n} for n in range(50)]


async def test_listeners_coming_and_going_on_a_channel_hear_what_follows_their_listen(
    redis_broker: RedisPubSub, channel: str
) -> None:
    """Subscribes and unsubscribes of one channel interleave on the shared connection; each
    listener is live once listen() is entered, whatever the others are doing."""

    async def listener(n: int) -> None:
        await asyncio.sleep((n % 7) * 0.003)
        async with redis_broker.listen(channel) as messages:
            await redis_broker.publish(channel, {"n": n})
            while (await asyncio.wait_for(anext(messages), timeout=5))["n"] != n:
                pass

    for _ in range(3):
        await asyncio.gather(*(listener(n) for n in range(60)))


async def test_a_dropped_redis_connection_ends_streams_with_broker_lost(
    redis_broker: RedisPubSub, redis_admin: Redis, channel: str
) -> None:
    """Never a quiet reconnect: what was published meanwhile would be lost unnoticed."""
    async with redis_broker.listen(channel) as messages:
        await redis_admin.client_kill_filter(_type="pubsub")
        with pytest.raises(BrokerLost):
            await asyncio.wait_for(anext(messages), timeout=5)
    async with redis_broker.listen(channel) as messages:  # a new connection
        await redis_broker.publish(channel, {"n": 1})
        assert await asyncio.wait_for(anext(messages), timeout=5) == {"n": 1}


async def test_closing_the_broker_ends_open_streams(pubsub: PubSub) -> None:
    channel = f"test:{uuid.uuid4().hex}"
    async with pubsub.listen(channel) as messages:
        await pubsub.close()
        with pytest.raises(BrokerLost):
            await asyncio.wait_for(anext(messages), timeout=5)


async def test_each_listener_gets_its_own_broker_lost(pubsub: PubSub) -> None:
    channel = f"test:{uuid.uuid4().hex}"
    async with pubsub.listen(channel) as first, pubsub.listen(channel) as second:
        await pubsub.close()
        errors = []
        for messages in (first, second):
            with pytest.raises(BrokerLost) as raised:
                await asyncio.wait_for(anext(messages), timeout=5)
            errors.append(raised.value)
    assert errors[0] is not errors[1]  # one shared exception would pile up tracebacks


async def test_a_message_that_is_not_json_is_skipped_not_fatal(
    redis_broker: RedisPubSub, redis_admin: Redis, channel: str
) -> None:
    async with redis_broker.listen(channel) as messages:
        await redis_admin.publish(channel, b"\xffnot json")
        await redis_broker.publish(channel, {"n": 1})
        assert await asyncio.wait_for(anext(messages), timeout=5) == {"n": 1}
