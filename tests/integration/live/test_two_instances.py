"""Two server instances over one PostgreSQL and one Redis: live updates and revocations
cross instances, and a Redis restart mid-stream loses nothing for a client that resumes
with since:."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis

from powermemo_gql.changes.feed import channel
from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.pubsub import RedisPubSub
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.projects.revocation import Revocation, announce
from powermemo_gql.settings import Settings
from powermemo_gql.users.repository import UserRepository
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, make_settings
from tests.integration.live.sockets import REVOKE, closed_with, issue_key, ready, still_open
from tests.integration.live.sockets import subscribe as subscribe_raw
from tests.integration.memory.conftest import memory_responder
from tests.live import LiveServer, live_server, subscribe
from tests.llm_server import ScriptedLLM
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project, raw_uuid

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL),
    reason="needs PostgreSQL and Redis (POWERMEMO_TEST_DATABASE_URL, POWERMEMO_TEST_REDIS_URL)",
)

SUBSCRIBE = """
subscription($since: String) {
  profileUpdated(userId: "alice", since: $since) { cursor kind subTopic newValue }
}
"""
ADD = """
mutation($sub: String!) {
  addProfileEntry(input: {userId: "alice", topic: "t", subTopic: $sub, content: "c"}) {
    __typename
  }
}
"""


@pytest.fixture
def pair(live_settings: Settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    with live_server(live_settings) as first, live_server(live_settings) as second:
        yield first, second


@pytest.fixture
async def tenant_on(pair: tuple[LiveServer, LiveServer]) -> ProjectHandle:
    first = pair[0]
    project = await create_project(first.http_url, Api(first.http_url, ROOT_TOKEN), "pair")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project


async def _next(results: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(results), timeout=15)


async def test_a_flush_on_one_instance_reaches_a_subscriber_on_the_other(
    pair: tuple[LiveServer, LiveServer], tenant_on: ProjectHandle, llm: ScriptedLLM
) -> None:
    first, second = pair
    on_second = Api(second.http_url, tenant_on.api_key)
    llm.responder = memory_responder()
    async with subscribe(first.ws_url, tenant_on.api_key, SUBSCRIBE) as results:
        await on_second.ok(
            'mutation { insertBlob(input: {userId: "alice", blob: {document: {content: "x"}}})'
            " { __typename } }"
        )
        await on_second.ok(
            'mutation { flushBuffer(input: {userId: "alice", wait: true}) { __typename } }'
        )
        kinds = [(await _next(results))["kind"] for _ in range(3)]
    assert kinds == ["ENTRY_ADDED", "ENTRY_ADDED", "BUFFER_FLUSHED"]


def _redis(*args: str) -> None:
    url = urlparse(TEST_REDIS_URL or "")
    subprocess.run(
        [
            shutil.which("redis-cli") or "redis-cli",
            "-h",
            url.hostname or "127.0.0.1",
            "-p",
            str(url.port or 6379),
            *args,
        ],
        check=False,
        capture_output=True,
        timeout=30,
    )


def _start_redis() -> None:
    url = urlparse(TEST_REDIS_URL or "")
    subprocess.run(
        [
            shutil.which("redis-server") or "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            str(url.port or 6379),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


async def _wait_for_redis(up: bool) -> None:
    for _ in range(100):
        ping = await asyncio.to_thread(
            subprocess.run,
            [
                shutil.which("redis-cli") or "redis-cli",
                "-p",
                str(urlparse(TEST_REDIS_URL or "").port or 6379),
                "ping",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if ("PONG" in ping.stdout) == up:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"redis did not come {'up' if up else 'down'}")


async def test_redis_restart_mid_stream_then_resume_with_since_misses_nothing(
    pair: tuple[LiveServer, LiveServer], tenant_on: ProjectHandle
) -> None:
    first, second = pair
    on_second = Api(second.http_url, tenant_on.api_key)
    seen: list[dict[str, Any]] = []
    ended: Exception | None = None
    try:
        async with subscribe(first.ws_url, tenant_on.api_key, SUBSCRIBE) as results:
            await on_second.ok(ADD, sub="before")
            seen.append(await _next(results))
            _redis("shutdown", "nosave")
            await _wait_for_redis(up=False)
            # Written while the broker is down: committed, but nobody is told.
            await on_second.ok(ADD, sub="during-1")
            await on_second.ok(ADD, sub="during-2")
            while True:
                seen.append(await _next(results))
    except TimeoutError as exc:
        raise AssertionError("the stream stayed open with its broker gone") from exc
    except Exception as exc:  # the subscription ended, as it must: the client resumes
        ended = exc
    finally:
        _start_redis()
        await _wait_for_redis(up=True)
    assert ended is not None

    await on_second.ok(ADD, sub="after")
    async with subscribe(
        first.ws_url, tenant_on.api_key, SUBSCRIBE, since=seen[-1]["cursor"]
    ) as resumed:
        recovered = [(await _next(resumed))["subTopic"] for _ in range(3)]
    # What arrived before the broker went away, then the resumed stream: everything, once.
    assert [c["subTopic"] for c in seen] + recovered == ["before", "during-1", "during-2", "after"]


async def test_revoking_a_key_on_one_instance_closes_its_socket_on_the_other(
    pair: tuple[LiveServer, LiveServer], tenant_on: ProjectHandle
) -> None:
    first, second = pair
    root = Api(first.http_url, ROOT_TOKEN)
    key_id, secret = await issue_key(root, tenant_on)
    socket = await ready(second.ws_url, secret)
    await subscribe_raw(socket, "live")
    assert await still_open(socket)

    await root.ok(REVOKE, id=key_id)

    assert await closed_with(socket) == (4403, "API key revoked")


async def test_a_project_revocation_through_redis_closes_every_socket_of_the_project(
    pair: tuple[LiveServer, LiveServer], tenant_on: ProjectHandle
) -> None:
    first, second = pair
    _, other_secret = await issue_key(Api(first.http_url, ROOT_TOKEN), tenant_on)
    sockets = [
        await ready(first.ws_url, tenant_on.api_key),
        await ready(second.ws_url, other_secret),
    ]
    broker = RedisPubSub(TEST_REDIS_URL or "")
    try:
        # What deleting the project announces (projects/revocation.py).
        await announce(broker, Revocation.of_project(raw_uuid(tenant_on.id)))
    finally:
        await broker.close()

    assert [(await closed_with(s))[0] for s in sockets] == [4403, 4403]


async def test_a_revocation_stops_the_subscriptions_running_on_the_socket(
    pair: tuple[LiveServer, LiveServer], tenant_on: ProjectHandle
) -> None:
    first, second = pair
    root = Api(first.http_url, ROOT_TOKEN)
    key_id, secret = await issue_key(root, tenant_on)
    socket = await ready(second.ws_url, secret)
    await subscribe_raw(socket, "live")
    # The running subscription is what keeps alice's feed channel subscribed on Redis.
    feed = channel(await _user_id(tenant_on, "alice"))
    redis = Redis.from_url(TEST_REDIS_URL or "")
    try:
        assert await _subscribers(redis, feed, until=lambda n: n > 0) == 1
        await root.ok(REVOKE, id=key_id)
        assert (await closed_with(socket))[0] == 4403
        assert await _subscribers(redis, feed, until=lambda n: n == 0) == 0
    finally:
        await redis.aclose()


async def _user_id(project: ProjectHandle, external_id: str) -> uuid.UUID:
    engine = create_engine(make_settings(TEST_DATABASE_URL or ""))
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            user = await UserRepository(session).get_by_external_id(
                raw_uuid(project.id), external_id
            )
    finally:
        await engine.dispose()
    assert user is not None
    return user.id


async def _subscribers(redis: Redis, name: str, until: Callable[[int], bool]) -> int:
    """Subscribers of the channel, once `until` holds of their number (or after 15 s)."""
    count = -1
    for _ in range(150):
        ((_, count),) = await redis.pubsub_numsub(name)
        if until(count):
            break
        await asyncio.sleep(0.1)
    return count
