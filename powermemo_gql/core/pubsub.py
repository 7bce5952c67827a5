"""Publish/subscribe between the parts of the server, and between server instances.

The embedded default is an in-process broker; with `redis_url` set, Redis carries
messages so that every instance sees them.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

Message = dict[str, Any]


class PubSub(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def listen(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        """Messages published on `channel` from the moment the context is entered."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class InMemoryPubSub:
    """One process, no network: each listener gets its own queue."""

    def __init__(self, max_queued: int = 1000) -> None:
        self._queues: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)
        self._max_queued = max_queued

    async def publish(self, channel: str, message: Message) -> None:
        for queue in list(self._queues.get(channel, ())):
            if queue.full():  # a stalled listener loses its oldest message, not the server
                queue.get_nowait()
            queue.put_nowait(message)

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        queue: asyncio.Queue[Message] = asyncio.Queue(self._max_queued)
        self._queues[channel].add(queue)

        async def messages() -> AsyncIterator[Message]:
            while True:
                yield await queue.get()

        try:
            yield messages()
        finally:
            self._queues[channel].discard(queue)
            if not self._queues[channel]:
                del self._queues[channel]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._queues.clear()


class RedisPubSub:
    def __init__(self, url: str) -> None:
        # Each live subscription holds a connection of its own: the client's default pool cap
        # (100) would silently stop live updates past 100 subscribers per instance.
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=5, max_connections=100_000)

    async def publish(self, channel: str, message: Message) -> None:
        await self._redis.publish(channel, json.dumps(message, separators=(",", ":")))

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)  # acknowledged: the subscription is live from here

        async def messages() -> AsyncIterator[Message]:
            async for raw in pubsub.listen():
                if raw.get("type") == "message":
                    yield json.loads(raw["data"])
            # redis-py ends listen() when the connection is gone: the stream must not just
            # end quietly, or a follower would believe it is up to date.
            raise ConnectionError("lost the Redis subscription")

        try:
            yield messages()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def create_pubsub(redis_url: str | None) -> PubSub:
    return RedisPubSub(redis_url) if redis_url else InMemoryPubSub()
