"""PostgreSQL frozen (silent, sockets open) or saturated: coded errors in bounded time,
/readyz down versus busy, liveness untouched, recovery after the thaw."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from powermemo_gql.core.db import (
    create_engine,
    create_migration_engine,
    database_trouble,
    pool_exhausted,
)
from powermemo_gql.resources import Resources
from tests.conftest import TEST_DATABASE_URL, make_settings
from tests.integration.faults.common import eventually, get, running_app, target_of, through, timed
from tests.proxy import FreezableProxy
from tests.support import ROOT_TOKEN, Api, create_project

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")

STATEMENT_TIMEOUT = 1.0
CONNECT_TIMEOUT = 1.0
READINESS_TIMEOUT = 1.0
# A frozen pooled connection costs its statement (statement timeout + 1 s on the client),
# the reconnect (connect timeout) and the rollback on the way out: bounded, with slack
# for a loaded machine.
REQUEST_BOUND = 3 * (STATEMENT_TIMEOUT + 1) + CONNECT_TIMEOUT + 10
READINESS_BOUND = READINESS_TIMEOUT + 1 + 5
PROJECTS = "{ projects { nodes { id } } }"


def _code(body: dict[str, object]) -> object:
    errors = body.get("errors")
    assert isinstance(errors, list), body
    assert errors, body
    return errors[0]["extensions"]["code"]


async def test_frozen_database_gives_coded_errors_in_bounded_time_then_recovers(
    database_url: str,
) -> None:
    async with (
        FreezableProxy(*target_of(database_url, 5432)) as proxy,
        running_app(
            through(database_url, proxy.port),
            database_statement_timeout=STATEMENT_TIMEOUT,
            database_connect_timeout=CONNECT_TIMEOUT,
            readiness_timeout=READINESS_TIMEOUT,
        ) as app,
    ):
        root = Api(app, ROOT_TOKEN)
        await create_project(app, root, "frozen")
        await root.ok(PROJECTS)
        proxy.freeze()

        pending = asyncio.create_task(timed(root.post({"query": PROJECTS})))
        alive, alive_seconds = await timed(get(app, "/healthz"))
        by_root, root_seconds = await pending
        # An unknown key must be looked up: refused before GraphQL, with a code.
        by_key, key_seconds = await timed(
            Api(app, "pm_not-a-key-0123456789").post({"query": PROJECTS})
        )
        ready, ready_seconds = await timed(get(app, "/readyz"))

        proxy.thaw()
        await eventually(lambda: _answers(root))
        ready_after = await get(app, "/readyz")

    assert alive.status_code == 200
    assert alive_seconds < 2  # not held behind the frozen query
    assert _code(by_root.json()) == "DATABASE_UNAVAILABLE"
    assert root_seconds < REQUEST_BOUND
    assert by_key.status_code == 503
    assert _code(by_key.json()) == "DATABASE_UNAVAILABLE"
    assert by_key.headers["Retry-After"] == "1"
    assert key_seconds < REQUEST_BOUND
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "down"
    assert ready_seconds < READINESS_BOUND
    assert ready_after.status_code == 200
    assert ready_after.json()["checks"]["database"] == "ok"


async def _answers(api: Api) -> bool:
    response = await api.post({"query": PROJECTS})
    return response.status_code == 200 and "errors" not in response.json()


async def test_readiness_says_busy_not_down_while_the_request_pool_is_full(
    database_url: str,
) -> None:
    async with running_app(database_url, database_pool_size=2, database_pool_timeout=1) as app:
        resources: Resources = app.state.resources
        release = asyncio.Event()

        async def hold() -> None:  # a slow query on one request-pool connection
            async with resources.engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(0.1)"))
                await release.wait()
                await connection.execute(text("SELECT pg_sleep(1)"))

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        try:
            await eventually(lambda: _is(pool_exhausted(resources.engine)))
            busy = await get(app, "/readyz")
            health = await Api(app, ROOT_TOKEN).post(
                {"query": "{ health { ok database databaseStatus } }"}
            )
        finally:
            release.set()
            await asyncio.gather(*holders)
        after = await get(app, "/readyz")

    assert busy.status_code == 200
    assert busy.json()["checks"]["database"] == "busy"
    assert after.json()["checks"]["database"] == "ok"
    # The health query checks on the probe's own connection too.
    assert health.json()["data"]["health"] == {
        "ok": True,
        "database": True,
        "databaseStatus": "BUSY",
    }


async def _is(value: bool) -> bool:
    return value


async def test_a_statement_over_the_statement_timeout_is_cancelled_with_a_code(
    database_url: str,
) -> None:
    engine = create_engine(make_settings(database_url, database_statement_timeout=0.5))
    try:
        async with engine.connect() as connection:
            started = time.perf_counter()
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("SELECT pg_sleep(30)"))
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    # The server cancelled it (SQLSTATE 57014), before the client's own limit: it answers,
    # too slowly, so busy rather than unavailable.
    assert getattr(raised.value.orig, "sqlstate", None) == "57014"
    assert database_trouble(raised.value) == (
        "DATABASE_BUSY",
        "The database is busy; try again shortly.",
    )
    assert seconds < 10


async def test_requests_have_the_statement_timeout_and_migrations_none(database_url: str) -> None:
    settings = make_settings(database_url, database_statement_timeout=12.5)
    shown = []
    for engine in (create_engine(settings), create_migration_engine(settings)):
        try:
            async with engine.connect() as connection:
                shown.append((await connection.execute(text("SHOW statement_timeout"))).scalar())
        finally:
            await engine.dispose()
    assert shown == ["12500ms", "0"]
