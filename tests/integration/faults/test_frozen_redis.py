"""Redis frozen (silent, sockets open): requests still answer in bounded time (rate limits
and notifications give way), /readyz says pubsub down, subscribers learn it, then recovery."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from redis.exceptions import RedisError
from starlette.applications import Starlette

from powermemo_gql.core.pubsub import BrokerLost, RedisPubSub, RedisTimeouts
from powermemo_gql.core.ratelimit import RedisRateLimiter
from tests.conftest import TEST_REDIS_URL
from tests.integration.faults.common import eventually, get, running_app, target_of, through, timed
from tests.proxy import FreezableProxy
from tests.support import ROOT_TOKEN, Api, create_project

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs Redis")

TIMEOUT = 0.5
PING_INTERVAL = 1.0
# The rate-limit count and the notification after the commit each wait one command timeout
# (no retry after a timeout): about 1 s here. The bounds leave slack for a loaded machine yet
# stay under redis-py's own 5 s default, which alone would have bounded the wait before.
REQUEST_BOUND = 4.0
READINESS_BOUND = 4.0
ADD_ENTRY = (
    'mutation { addProfileEntry(input: {userId: "alice", topic: "a", subTopic: "b",'
    ' content: "c"}) { __typename } }'
)


async def test_frozen_redis_never_holds_a_request_and_readiness_says_down(
    database_url: str,
) -> None:
    assert TEST_REDIS_URL is not None
    async with (
        FreezableProxy(*target_of(TEST_REDIS_URL, 6379)) as proxy,
        running_app(
            database_url,
            redis_url=through(TEST_REDIS_URL, proxy.port),
            redis_timeout=TIMEOUT,
            redis_connect_timeout=TIMEOUT,
            redis_ping_interval=PING_INTERVAL,
            readiness_timeout=TIMEOUT,
            rate_limit_per_minute=1000,
        ) as app,
    ):
        project = await create_project(app, Api(app, ROOT_TOKEN), "frozen-redis")
        await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
        proxy.freeze()

        written, write_seconds = await timed(project.api.post({"query": ADD_ENTRY}))
        ready, ready_seconds = await timed(get(app, "/readyz"))

        proxy.thaw()
        await eventually(lambda: _ready(app))
        read = await project.api.ok('{ user(userId: "alice") { profile { content } } }')

    # Counted or not, notified or not: the entry is written and the answer comes in time.
    assert written.status_code == 200
    assert "errors" not in written.json(), written.json()
    assert write_seconds < REQUEST_BOUND
    assert read["user"]["profile"] == [{"content": "c"}]
    assert ready.status_code == 503
    assert ready.json()["checks"]["pubsub"] == "down"
    assert ready_seconds < READINESS_BOUND


async def _ready(app: Starlette) -> bool:
    response = await get(app, "/readyz")
    return bool(response.json()["checks"]["pubsub"] == "ok")


async def test_a_subscriber_learns_within_a_bound_that_redis_froze() -> None:
    assert TEST_REDIS_URL is not None
    async with FreezableProxy(*target_of(TEST_REDIS_URL, 6379)) as proxy:
        broker = RedisPubSub(
            through(TEST_REDIS_URL, proxy.port),
            timeouts=RedisTimeouts(connect=TIMEOUT, command=TIMEOUT, ping_interval=PING_INTERVAL),
        )
        try:
            async with broker.listen("frozen-channel") as messages:
                await broker.publish("frozen-channel", {"n": 1})
                assert await anext(messages) == {"n": 1}
                # Silent but alive: several PINGs go out and are answered; the stream stays.
                await asyncio.sleep(3 * (PING_INTERVAL + TIMEOUT))
                await broker.publish("frozen-channel", {"n": 2})
                assert await anext(messages) == {"n": 2}
                proxy.freeze()
                started = time.perf_counter()
                with pytest.raises(BrokerLost):
                    async with asyncio.timeout(60):  # only against a hang
                        await anext(messages)
                lost_seconds = time.perf_counter() - started
            proxy.thaw()
            async with broker.listen("frozen-channel") as messages:  # a new link
                await broker.publish("frozen-channel", {"n": 3})
                assert await anext(messages) == {"n": 3}
        finally:
            await broker.close()
    assert lost_seconds < PING_INTERVAL + TIMEOUT + 5


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("powermemo_gql")
    ]


async def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    assert TEST_REDIS_URL is not None
    caplog.set_level(logging.DEBUG)
    async with FreezableProxy(*target_of(TEST_REDIS_URL, 6379)) as proxy:
        url = through(TEST_REDIS_URL, proxy.port)
        timeouts = RedisTimeouts(connect=TIMEOUT, command=TIMEOUT, ping_interval=PING_INTERVAL)
        broker = RedisPubSub(url, timeouts=timeouts)
        limiter = RedisRateLimiter(url, limit=100, timeout=TIMEOUT)
        limiter.PAUSE_AFTER_FAILURE = 0  # every hit asks the frozen Redis
        try:
            await broker.publish("outage", {"n": 0})
            proxy.freeze()
            for n in range(3):  # publishes, subscriptions, pings, counts: all fail
                with pytest.raises(RedisError):
                    await broker.publish("outage", {"n": n})
                with pytest.raises(BrokerLost):
                    async with broker.listen(f"outage-{n}"):
                        pass
                assert not await broker.ping()
                assert (await limiter.hit("outage")).allowed  # fail-open, by design
            during = _outage_lines(caplog)
            proxy.thaw()
            for n in range(3):
                await broker.publish("outage", {"n": n})
                assert (await limiter.hit("outage")).allowed
        finally:
            await broker.close()
            await limiter.close()
    logged = _outage_lines(caplog)
    assert [r.getMessage().split(" (")[0] for r in during] == [
        "the message broker is unavailable",
        "Redis for rate limits is unavailable",
    ]
    assert [r.getMessage() for r in logged[len(during) :]] == [
        "the message broker is available again",
        "Redis for rate limits is available again",
    ]
    assert not [r for r in logged if r.exc_info]
