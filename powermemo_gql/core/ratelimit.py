"""Requests per minute per credential: fixed one-minute windows, in Redis or in process."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from powermemo_gql.core.broker_health import BrokerHealth

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window resets


class RateLimiter(Protocol):
    async def hit(self, key: str) -> Verdict: ...

    async def close(self) -> None: ...


def _window(now: float) -> tuple[int, int]:
    window = int(now // WINDOW_SECONDS)
    return window, WINDOW_SECONDS - int(now % WINDOW_SECONDS)


class InMemoryRateLimiter:
    """One process (the embedded default): counters for the current window only."""

    def __init__(self, limit: int, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._counts: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._max_keys = max_keys

    async def hit(self, key: str) -> Verdict:
        window, retry_after = _window(time.time())
        count = self._counts.get((key, window), 0) + 1
        self._counts[(key, window)] = count
        self._counts.move_to_end((key, window))
        while len(self._counts) > self._max_keys:  # old windows and idle keys go first
            self._counts.popitem(last=False)
        return Verdict(count <= self._limit, retry_after)

    async def close(self) -> None:
        self._counts.clear()


class RedisRateLimiter:
    """Shared by every instance. If Redis is unreachable, requests are let through: the API
    keeps serving, unlimited for the while, rather than failing."""

    # After a failure, Redis is left alone this long: requests must not each wait for it.
    PAUSE_AFTER_FAILURE = 5.0

    def __init__(self, url: str, limit: int, timeout: float = 1.0) -> None:
        # No retry: a frozen Redis costs a request one timeout, then PAUSE_AFTER_FAILURE none.
        self._redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._limit = limit
        self._paused_until = 0.0
        # Logged once per outage, not at every retry.
        self._health = BrokerHealth("Redis for rate limits", "requests are not limited meanwhile")

    async def hit(self, key: str) -> Verdict:
        window, retry_after = _window(time.time())
        if time.monotonic() < self._paused_until:
            return Verdict(True, retry_after)
        name = f"powermemo:ratelimit:{key}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, WINDOW_SECONDS * 2)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._health.failed("rate-limit count", exc)
            self._paused_until = time.monotonic() + self.PAUSE_AFTER_FAILURE
            return Verdict(True, retry_after)
        self._health.succeeded()
        return Verdict(int(count) <= self._limit, retry_after)

    async def close(self) -> None:
        await self._redis.aclose()


class NoRateLimit:
    async def hit(self, key: str) -> Verdict:
        return Verdict(True, 0)

    async def close(self) -> None:
        return None


def create_rate_limiter(limit: int, redis_url: str | None, timeout: float = 1.0) -> RateLimiter:
    if limit <= 0:
        return NoRateLimit()
    if redis_url:
        return RedisRateLimiter(redis_url, limit, timeout)
    return InMemoryRateLimiter(limit)


class FailureThrottle:
    """Failed authentications per client address, so that guessing keys stops costing a
    database lookup each. The count is shared (in Redis when set); once it is over the
    limit, this instance refuses the address from memory until the window ends."""

    def __init__(
        self,
        counter: RateLimiter,
        now: Callable[[], float] = time.monotonic,
        max_blocked: int = 100_000,
    ) -> None:
        self._counter = counter
        self._now = now
        self._blocked_until: OrderedDict[str, float] = OrderedDict()
        self._max_blocked = max_blocked

    def retry_after(self, client: str) -> int | None:
        """Seconds the address must wait, or None when it may try."""
        until = self._blocked_until.get(client)
        if until is None:
            return None
        left = until - self._now()
        if left <= 0:
            del self._blocked_until[client]
            return None
        return max(1, math.ceil(left))

    async def failed(self, client: str) -> None:
        verdict = await self._counter.hit(f"authfail:{client}")
        if not verdict.allowed:
            self._blocked_until[client] = self._now() + verdict.retry_after
            self._blocked_until.move_to_end(client)
            while len(self._blocked_until) > self._max_blocked:
                self._blocked_until.popitem(last=False)

    async def close(self) -> None:
        await self._counter.close()


def create_failure_throttle(
    limit: int, redis_url: str | None, timeout: float = 1.0
) -> FailureThrottle:
    """After `limit` failures in a window the address waits for the next one. `timeout`
    bounds each Redis call, so a frozen Redis delays a failed login by that at most."""
    if limit <= 0:
        return FailureThrottle(NoRateLimit())
    # The counter refuses the hit past its limit: the limit-th failure must already block.
    allowed = limit - 1
    counter = (
        RedisRateLimiter(redis_url, allowed, timeout) if redis_url else InMemoryRateLimiter(allowed)
    )
    return FailureThrottle(counter)
