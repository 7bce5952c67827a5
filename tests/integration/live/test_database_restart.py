"""PostgreSQL restarting under load: clean, coded errors while it is away, no hang, and the
server recovers by itself."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from powermemo_gql.settings import Settings
from tests.conftest import TEST_DATABASE_URL
from tests.live import LiveServer
from tests.support import ProjectHandle

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="restarts the PostgreSQL server")

REQUEST_TIMEOUT = 15.0


def _restart_postgres() -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        [
            shutil.which("pg_ctlcluster") or "/usr/bin/pg_ctlcluster",
            "--skip-systemctl-redirect",
            version,
            "main",
            "restart",
            "-m",
            "fast",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def live_settings(live_settings: Settings) -> Settings:
    # No rate limit: requests failing fast while the database is away would otherwise reach
    # it on a slow machine (4 clients, one request every 20 ms each), and RATE_LIMITED is
    # not what this test is about.
    return live_settings.model_copy(
        update={"database_pool_timeout": 2.0, "rate_limit_per_minute": 0}
    )


async def test_requests_get_coded_errors_during_a_restart_then_succeed(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    query = {"query": '{ user(userId: "alice") { userId } }'}
    outcomes: list[str] = []
    stop = asyncio.Event()

    async def load(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            started = time.monotonic()
            response = await client.post("/graphql", json=query, timeout=REQUEST_TIMEOUT)
            assert time.monotonic() - started < REQUEST_TIMEOUT  # no hang
            body = response.json()
            if response.status_code == 200 and not body.get("errors"):
                outcomes.append("ok")
            else:
                outcomes.append(body["errors"][0]["extensions"]["code"])
            await asyncio.sleep(0.02)

    async with httpx.AsyncClient(base_url=live.http_url, headers=tenant.api.headers()) as client:
        workers = [asyncio.create_task(load(client)) for _ in range(4)]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(_restart_postgres)
        await asyncio.sleep(2.0)  # let the pool notice and reconnect
        stop.set()
        await asyncio.gather(*workers)
        after = await client.post("/graphql", json=query)

    assert "ok" in outcomes
    errors = {o for o in outcomes if o != "ok"}
    # Whatever failed while the database was away failed cleanly, with a retryable code.
    assert errors <= {"DATABASE_UNAVAILABLE", "DATABASE_BUSY"}, outcomes
    assert after.json() == {"data": {"user": {"userId": "alice"}}}
