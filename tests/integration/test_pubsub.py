"""The broker the server runs with: in-process by default, Redis when configured."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from powermemo_gql.core.pubsub import InMemoryPubSub, PubSub, RedisPubSub, create_pubsub
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
