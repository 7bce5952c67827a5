"""Publish/subscribe between the parts of the server, and between server instances.

The embedded default is an in-process broker; with `redis_url` set, Redis carries
messages so that every instance sees them. A listener whose broker breaks gets
`BrokerLost` from its stream, never silence: messages may have been missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisSubscriber
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from powermemo_gql.core.broker_health import BrokerHealth

Message = dict[str, Any]
Queued = Message | BaseException

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedisTimeouts:
    connect: float = 2.0  # seconds to open a connection
    command: float = 2.0  # seconds one command (or the subscriber's PING) may take
    ping_interval: float = 10.0  # seconds of subscriber silence before it sends a PING


class BrokerLost(ConnectionError):
    """The broker connection broke: messages may have been missed."""


class PubSub(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def listen(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        """Messages published on `channel` from the moment the context is entered."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class _Listeners:
    """Local fan-out: each listener of a channel has its own bounded queue."""

    def __init__(self, max_queued: int) -> None:
        self._queues: dict[str, set[asyncio.Queue[Queued]]] = defaultdict(set)
        self._max_queued = max_queued

    def add(self, channel: str) -> asyncio.Queue[Queued]:
        queue: asyncio.Queue[Queued] = asyncio.Queue(self._max_queued)
        self._queues[channel].add(queue)
        return queue

    def remove(self, channel: str, queue: asyncio.Queue[Queued]) -> bool:
        """Forget the listener; True when it was the channel's last one."""
        listeners = self._queues.get(channel)
        if listeners is None:
            return False
        listeners.discard(queue)
        if listeners:
            return False
        del self._queues[channel]
        return True

    def has(self, channel: str) -> bool:
        return channel in self._queues

    def deliver(self, channel: str, message: Message) -> None:
        for queue in self._queues.get(channel, ()):
            _put_dropping_oldest(queue, message)

    def fail(self, reason: str) -> None:
        """End every listener's stream with a BrokerLost of its own (one shared exception
        would collect every listener's traceback)."""
        for listeners in self._queues.values():
            for queue in listeners:
                _put_dropping_oldest(queue, BrokerLost(reason))
        self._queues.clear()


def _put_dropping_oldest(queue: asyncio.Queue[Queued], item: Queued) -> None:
    # A stalled listener loses its oldest message, not the server its memory.
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


async def _messages(queue: asyncio.Queue[Queued]) -> AsyncIterator[Message]:
    while True:
        item = await queue.get()
        if isinstance(item, BaseException):
            raise item
        yield item


class InMemoryPubSub:
    """One process, no network."""

    def __init__(self, max_queued: int = 1000) -> None:
        self._listeners = _Listeners(max_queued)

    async def publish(self, channel: str, message: Message) -> None:
        self._listeners.deliver(channel, message)

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        queue = self._listeners.add(channel)
        try:
            yield _messages(queue)
        finally:
            self._listeners.remove(channel, queue)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._listeners.fail("the broker closed")


class _RedisLink:
    """One Redis connection in subscribe mode, shared by every listener of this instance.

    Redis answers (un)subscribe commands in the order they were sent, so each SUBSCRIBE's
    acknowledgement is matched to its own future: a listener counts as live only once its
    own SUBSCRIBE, sent after any UNSUBSCRIBE of that channel, is acknowledged. Any error
    breaks the whole link; its listeners get `BrokerLost` and the next listen opens a new one.
    """

    def __init__(
        self,
        subscriber: RedisSubscriber,
        max_queued: int,
        timeouts: RedisTimeouts,
        health: BrokerHealth,
    ) -> None:
        self._subscriber = subscriber
        self._timeouts = timeouts
        self._health = health
        self._listeners = _Listeners(max_queued)
        self._live: set[str] = set()
        self._latest: dict[str, asyncio.Future[BaseException | None]] = {}
        self._acks: dict[str, deque[asyncio.Future[BaseException | None]]] = defaultdict(deque)
        self._commands = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self.broken = False

    async def join(self, channel: str) -> asyncio.Queue[Queued]:
        if self.broken:
            raise BrokerLost("the Redis subscription is broken")
        queue = self._listeners.add(channel)
        try:
            if channel not in self._live:
                acknowledged = self._latest.get(channel) or await self._subscribe(channel)
                if acknowledged is not None:
                    # A Redis that does not acknowledge within one command timeout is as
                    # good as frozen: the subscription fails (BROKER_UNAVAILABLE), not hangs.
                    async with asyncio.timeout(self._timeouts.command):
                        error = await asyncio.shield(acknowledged)
                    if error is not None:
                        raise BrokerLost("lost the Redis subscription") from error
        except TimeoutError as exc:
            await self.fail(exc)
            raise BrokerLost("Redis did not acknowledge a subscription") from exc
        except BaseException:
            await self.leave(channel, queue)
            raise
        return queue

    async def leave(self, channel: str, queue: asyncio.Queue[Queued]) -> None:
        if not self._listeners.remove(channel, queue):
            return
        # The channel's last listener left: a later one must subscribe afresh.
        self._live.discard(channel)
        self._latest.pop(channel, None)
        try:
            async with self._commands:
                # Broken meanwhile: nothing to undo. A new listener came: keep the channel.
                if self.broken or self._listeners.has(channel):
                    return
                await self._subscriber.unsubscribe(channel)
        except Exception as exc:
            await self.fail(exc)

    async def _subscribe(self, channel: str) -> asyncio.Future[BaseException | None] | None:
        """Send SUBSCRIBE unless one is on its way or done; the future of the one to wait for
        (None when the channel is live already)."""
        try:
            async with self._commands:
                if self.broken:
                    raise BrokerLost("the Redis subscription is broken")
                if channel in self._live:
                    return None
                acknowledged = self._latest.get(channel)
                if acknowledged is not None:  # another listener sent it while this one waited
                    return acknowledged
                acknowledged = asyncio.get_running_loop().create_future()
                self._latest[channel] = acknowledged
                self._acks[channel].append(acknowledged)
                await self._subscriber.subscribe(channel)
        except BrokerLost:
            raise
        except Exception as exc:
            await self.fail(exc)
            raise BrokerLost("could not subscribe on Redis") from exc
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="redis-pubsub-reader")
        return acknowledged

    async def _read(self) -> None:
        # Keepalive alone takes minutes to notice a Redis that froze with the socket open:
        # after ping_interval of silence send a PING, and break the link when nothing at all
        # (the PONG or any message) comes back within the command timeout.
        loop = asyncio.get_running_loop()
        interval, timeout = self._timeouts.ping_interval, self._timeouts.command
        heard_at, pinged_at = loop.time(), None
        try:
            while True:
                wait = (
                    interval if pinged_at is None else max(0.0, pinged_at + timeout - loop.time())
                )
                message = await self._subscriber.get_message(timeout=wait)
                now = loop.time()
                if message is not None:
                    heard_at, pinged_at = now, None
                    self._dispatch(message)
                elif pinged_at is not None and now >= pinged_at + timeout:
                    raise TimeoutError(f"Redis did not answer a PING within {timeout} s")
                if pinged_at is None and now - heard_at >= interval:
                    async with self._commands:
                        await self._subscriber.ping()
                    pinged_at = loop.time()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("the Redis subscription broke", exc_info=True)
            await self.fail(exc)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "pong":  # the answer to a liveness PING: hearing it was the point
            return
        channel = _text(message["channel"])
        if kind == "message":
            try:
                decoded = json.loads(message["data"])
            except ValueError:  # somebody else's message on our channel: not worth the link
                logger.warning("ignored a message on %s that is not JSON", channel)
                return
            self._listeners.deliver(channel, decoded)
        elif kind == "subscribe" and self._acks.get(channel):
            acknowledged = self._acks[channel].popleft()
            if not self._acks[channel]:
                del self._acks[channel]
            if self._latest.get(channel) is acknowledged:
                del self._latest[channel]
                self._live.add(channel)
            if not acknowledged.done():
                acknowledged.set_result(None)
            self._health.succeeded()

    async def fail(self, error: BaseException) -> None:
        """Break the link: every listener's stream ends with `BrokerLost`."""
        if self.broken:
            return
        self.broken = True
        if not isinstance(error, BrokerLost):  # closing on purpose is no outage
            self._health.failed("subscription", error)
        self._listeners.fail("lost the Redis subscription")
        for pending in self._acks.values():
            for acknowledged in pending:
                if not acknowledged.done():
                    acknowledged.set_result(error)
        self._acks.clear()
        self._latest.clear()
        self._live.clear()
        await self.close(cancel_reader=asyncio.current_task() is not self._reader)

    async def close(self, cancel_reader: bool = True) -> None:
        if cancel_reader and self._reader is not None:
            self._reader.cancel()
        try:
            await self._subscriber.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis 8
        except Exception:  # closing a broken connection: nothing more to lose
            logger.debug("closing the Redis subscriber failed", exc_info=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# The subscriber only reads, so a peer that vanished without a word (host down, a NAT
# forgetting the flow) would leave it waiting forever: probe after 30 s of silence, every
# 10 s, and give up after 3 unanswered probes (where the OS has these options).
_KEEPALIVE = {
    option: value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if (option := getattr(socket, name, None)) is not None
}


class RedisPubSub:
    def __init__(
        self, url: str, max_queued: int = 1000, timeouts: RedisTimeouts | None = None
    ) -> None:
        self._timeouts = timeouts or RedisTimeouts()
        # One retry after a broken connection (a pooled one the server closed), none after a
        # timeout: a frozen Redis costs a publish one command timeout.
        self._redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=self._timeouts.connect,
            socket_timeout=self._timeouts.command,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        # The subscriber must never reconnect quietly: what was published while it was away
        # would be lost without a word. Errors surface, and the link is replaced.
        # Named, so that CLIENT LIST tells an instance's subscriber connection apart.
        # The socket timeout bounds the handshake; waiting for messages has its own timeout,
        # and the PINGs after silence detect a Redis that froze.
        self.subscriber_name = f"powermemo-subscriber-{uuid.uuid4().hex[:12]}"
        self._subscriber_client: Redis = Redis.from_url(
            url,
            client_name=self.subscriber_name,
            socket_connect_timeout=self._timeouts.connect,
            socket_timeout=self._timeouts.command,
            socket_keepalive=True,
            socket_keepalive_options=_KEEPALIVE,
            retry=Retry(NoBackoff(), 0),
        )
        self._max_queued = max_queued
        self._link: _RedisLink | None = None
        self.health = BrokerHealth()

    async def publish(self, channel: str, message: Message) -> None:
        try:
            await self._redis.publish(channel, json.dumps(message, separators=(",", ":")))
        except Exception as exc:
            self.health.failed("publish", exc)
            raise
        self.health.succeeded()

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        if self._link is None or self._link.broken:
            self._link = _RedisLink(
                self._subscriber_client.pubsub(), self._max_queued, self._timeouts, self.health
            )
        link = self._link
        queue = await link.join(channel)
        try:
            yield _messages(queue)
        finally:
            await link.leave(channel, queue)

    async def ping(self) -> bool:
        try:
            answered = bool(await self._redis.ping())
        except (RedisError, OSError) as exc:
            self.health.failed("ping", exc)
            return False
        self.health.succeeded()
        return answered

    async def close(self) -> None:
        if self._link is not None:
            await self._link.fail(BrokerLost("the broker closed"))
        await self._redis.aclose()
        await self._subscriber_client.aclose()


def create_pubsub(redis_url: str | None, timeouts: RedisTimeouts | None = None) -> PubSub:
    return RedisPubSub(redis_url, timeouts=timeouts) if redis_url else InMemoryPubSub()
