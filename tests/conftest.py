"""Test fixtures. SQLite always; PostgreSQL and Redis when these are set:

POWERMEMO_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test
POWERMEMO_TEST_REDIS_URL=redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.core import migrations
from powermemo_gql.core.clock import FakeClock
from powermemo_gql.core.db import create_engine
from powermemo_gql.core.ratelimit import WINDOW_SECONDS
from powermemo_gql.settings import Settings
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

TEST_DATABASE_URL = os.environ.get("POWERMEMO_TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("POWERMEMO_TEST_REDIS_URL") or None
# The time of the app of a test marked `fake_clock`: no wall clock shows it while tests run,
# so a row stamped with it took its time from the app's clock.
FAKE_NOW = datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": TEST_REDIS_URL,
        "root_token": ROOT_TOKEN,
        "migrate_on_startup": False,
        "mode": "development",
        # Nothing listens on port 9: a flush no test scripted fails at once, never online.
        "llm_base_url": "http://127.0.0.1:9/v1",
        "llm_max_retries": 0,
        "llm_retry_backoff_seconds": 0,
        # Every test's client is 127.0.0.1, and with Redis the failure counts outlive the app:
        # the tests of the throttle set their own limit (and a client address of their own).
        "auth_failures_per_minute": 100_000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _reset_postgres(url: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


async def _truncate_postgres(url: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        async with engine.begin() as connection:
            tables = (
                await connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database at the newest migration: PostgreSQL reset once, or a SQLite file to copy."""
    if TEST_DATABASE_URL:
        asyncio.run(_reset_postgres(TEST_DATABASE_URL))
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def build() -> None:
        engine = create_engine(make_settings(url))
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(build())
    return str(path)


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of this test's own."""
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        asyncio.run(_truncate_postgres(TEST_DATABASE_URL))
        return
    path = tmp_path / "powermemo.db"
    shutil.copyfile(migrated_template, path)
    yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Starlette]:
    fake = request.node.get_closest_marker("fake_clock") is not None
    application = create_app(settings, clock=FakeClock(FAKE_NOW) if fake else None)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
def root(app: Starlette) -> Api:
    return Api(app, ROOT_TOKEN)


ProjectFactory = Callable[[str], Awaitable[ProjectHandle]]


@pytest.fixture
def make_project(app: Starlette, root: Api) -> ProjectFactory:
    async def make(name: str) -> ProjectHandle:
        return await create_project(app, root, name)

    return make


@pytest.fixture
async def project(make_project: ProjectFactory) -> ProjectHandle:
    return await make_project("acme")


@pytest.fixture
def fresh_rate_window() -> None:
    """Rate limits count per wall-clock minute: a test that counts requests up to a limit
    starts with at least 20 s of its window left, so a window ending mid-test (likelier
    on a loaded machine) cannot reset the count under it."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 20:
        time.sleep(left + 0.05)
