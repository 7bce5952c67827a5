"""A Redis that the test starts, then pauses (SIGSTOP: silent, sockets open) and resumes.

Two instances share it. While it is paused, writes answer without waiting for it, a new
subscription is refused with BROKER_UNAVAILABLE within the configured time, and the outage
is logged once; once it resumes, the subscriber that stayed connected has every change, in
order, once. And when only the writer's publishes fail while the subscriber's link stays
up, the catch-up check delivers within its period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from powermemo_gql.settings import Settings
from tests.conftest import TEST_DATABASE_URL, make_settings
from tests.integration.live.sockets import ready
from tests.live import LiveServer, free_port, live_server, subscribe
from tests.proxy import FreezableProxy
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

pytestmark = [
    pytest.mark.skipif(
        not TEST_DATABASE_URL, reason="two instances need PostgreSQL (POWERMEMO_TEST_DATABASE_URL)"
    ),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]

REDIS_TIMEOUT = 3.0
CATCH_UP = 0.5
# A write never waits for the paused broker: well under the one command timeout that each
# write waited for its notification before.
WRITE_BOUND = REDIS_TIMEOUT * 2 / 3
# A subscription waits one command timeout for Redis to acknowledge it; the rest is slack
# for a loaded machine (it used to wait 10 s, then end as FEED_INTERRUPTED).
REFUSAL_BOUND = REDIS_TIMEOUT + 4.0
SUBSCRIBE = 'subscription { profileUpdated(userId: "alice") { cursor subTopic } }'
ADD = """
mutation($sub: String!) {
  addProfileEntry(input: {userId: "alice", topic: "t", subTopic: $sub, content: "c"}) {
    __typename
  }
}
"""


@dataclass
class PausableRedis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PausableRedis]:
    port = free_port()
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)),
            *("--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = PausableRedis(port, process)
    try:
        deadline = time.monotonic() + 20
        while not _answers_ping(port):
            assert process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)
        yield server
    finally:
        server.resume()  # a stopped process ignores SIGTERM until it runs again
        process.terminate()
        process.wait(timeout=20)


def _settings(database_url: str, redis_url: str) -> Settings:
    return make_settings(
        database_url,
        redis_url=redis_url,
        redis_timeout=REDIS_TIMEOUT,
        redis_connect_timeout=REDIS_TIMEOUT,
        # No PING during the pause: the subscriber's link stays up, as after a short stall.
        redis_ping_interval=60,
        feed_catch_up_seconds=CATCH_UP,
        # The rate limiter gives way too (fail-open, one timeout then a pause): not this test.
        rate_limit_per_minute=0,
        background_flushes=False,
    )


@pytest.fixture
async def tenant(redis_server: PausableRedis, database_url: str) -> AsyncIterator[Any]:
    settings = _settings(database_url, redis_server.url)
    with live_server(settings) as writer, live_server(settings) as reader:
        project = await create_project(writer.http_url, Api(writer.http_url, ROOT_TOKEN), "pause")
        await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
        yield writer, reader, project


async def _next(results: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(results), timeout=15)


async def _write(api: Api, sub: str) -> float:
    started = time.perf_counter()
    await api.ok(ADD, sub=sub)
    return time.perf_counter() - started


async def _refused_subscription(server: LiveServer, token: str) -> tuple[dict[str, Any], float]:
    socket_ = await ready(server.ws_url, token)
    try:
        started = time.perf_counter()
        await socket_.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        )
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(socket_.recv(), timeout=30))
        return answer, time.perf_counter() - started
    finally:
        await socket_.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("powermemo_gql", "strawberry"))
    ]


async def test_a_paused_redis_delays_live_updates_but_loses_none(
    redis_server: PausableRedis,
    tenant: tuple[LiveServer, LiveServer, ProjectHandle],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, reader, project = tenant
    caplog.set_level(logging.DEBUG)
    async with subscribe(reader.ws_url, project.api_key, SUBSCRIBE) as results:
        await project.api.ok(ADD, sub="before")
        seen = [await _next(results)]
        caplog.clear()

        redis_server.pause()
        try:
            write_seconds = [await _write(project.api, f"during-{n}") for n in range(3)]
            refusal, refusal_seconds = await _refused_subscription(writer, project.api_key)
        finally:
            redis_server.resume()
        seen += [await _next(results) for _ in range(3)]
        await project.api.ok(ADD, sub="after")
        seen.append(await _next(results))
        await asyncio.sleep(3 * CATCH_UP)  # nothing more comes: no change twice
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(results), timeout=CATCH_UP)

    assert [c["subTopic"] for c in seen] == ["before", "during-0", "during-1", "during-2", "after"]
    assert max(write_seconds) < WRITE_BOUND, write_seconds
    assert refusal["type"] in {"next", "error"}, refusal
    errors = refusal["payload"]["errors"] if refusal["type"] == "next" else refusal["payload"]
    assert [e["extensions"]["code"] for e in errors] == ["BROKER_UNAVAILABLE"]
    assert refusal_seconds < REFUSAL_BOUND
    # The outage and the recovery once each (the writer saw it; the reader's idle link did
    # not), no traceback, nothing at ERROR: not per publish, retry, watch or subscriber.
    logged = _warnings(caplog)
    assert [r.getMessage().split(" (")[0] for r in logged] == [
        "the message broker is unavailable",
        "the message broker is available again",
    ], [r.getMessage() for r in logged]
    assert not [r for r in logged if r.exc_info]


async def test_publishes_failing_while_the_subscriber_link_stays_up_are_caught_up(
    redis_server: PausableRedis, database_url: str
) -> None:
    async with FreezableProxy("127.0.0.1", redis_server.port) as proxy:
        # The writer reaches Redis through the proxy; the reader directly.
        through_proxy = f"redis://127.0.0.1:{proxy.port}/0"
        with (
            live_server(_settings(database_url, through_proxy)) as writer,
            live_server(_settings(database_url, redis_server.url)) as reader,
        ):
            project = await create_project(
                writer.http_url, Api(writer.http_url, ROOT_TOKEN), "lost-publish"
            )
            await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
            async with subscribe(reader.ws_url, project.api_key, SUBSCRIBE) as results:
                await project.api.ok(ADD, sub="before")
                seen = [await _next(results)]
                proxy.freeze()  # the writer's publishes time out; the reader hears nothing
                await project.api.ok(ADD, sub="unpublished")
                started = time.perf_counter()
                seen.append(await _next(results))
                delay = time.perf_counter() - started
            proxy.thaw()
    assert [c["subTopic"] for c in seen] == ["before", "unpublished"]
    # Found by the reader's catch-up check (plus slack for a loaded machine).
    assert delay < CATCH_UP + 5
