"""Migrations are the only way the schema changes: they run both ways and match the models."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import powermemo_gql.all_models  # noqa: F401  (registers every table)
from powermemo_gql.core import migrations
from powermemo_gql.core.db import create_engine
from tests.conftest import make_settings


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(database_url))
    yield engine
    await engine.dispose()


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    return set(names) - {"alembic_version"}


async def test_upgrade_downgrade_upgrade(engine: AsyncEngine) -> None:
    expected = {t.name for t in SQLModel.metadata.sorted_tables}
    assert await _tables(engine) == expected
    await migrations.downgrade(engine, "base")
    assert await _tables(engine) == set()
    assert await migrations.pending_revisions(engine)
    await migrations.upgrade(engine)
    assert await _tables(engine) == expected
    assert not await migrations.pending_revisions(engine)


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": migrations.include_object},
        )
        return list(compare_metadata(context, SQLModel.metadata))

    async with engine.connect() as connection:
        pending = await connection.run_sync(diff)
    assert pending == [], f"models changed without a migration: {pending}"


async def test_upgrade_is_idempotent(engine: AsyncEngine) -> None:
    await migrations.upgrade(engine)
    await migrations.upgrade(engine)
    assert not await migrations.pending_revisions(engine)


async def _index_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        rows = await connection.exec_driver_sql("SELECT indexname FROM pg_indexes")
        return {row[0] for row in rows}


async def test_only_the_full_text_index_a_query_reads_is_kept(engine: AsyncEngine) -> None:
    """Search ranks words in process (recall/memory_index.py): the full-text indexes once made
    for its keyword side would only slow writes. `user.events(search:)` still reads one."""
    if engine.dialect.name != "postgresql":
        pytest.skip("full-text indexes exist on PostgreSQL only")
    unused = {"ix_event_facts_content_fts", "ix_profile_entries_keyword_fts"}
    names = await _index_names(engine)
    assert "ix_events_summary_fts" in names
    assert not unused & names
    await migrations.downgrade(engine, "6a3e9f1c2d57")
    assert unused <= await _index_names(engine)
    await migrations.upgrade(engine)
    assert not unused & await _index_names(engine)
