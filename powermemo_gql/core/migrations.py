"""Applying alembic migrations from code: `powermemo-gql migrate`, startup, and tests."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from powermemo_gql.core.db import create_migration_engine
from powermemo_gql.settings import Settings

_PACKAGE_DIR = Path(__file__).resolve().parent.parent

# Indexes that exist on one dialect only, created by hand in their migration (the PostgreSQL
# full-text index of event summaries; those of facts and profile entries exist between their
# migrations and 7b4d2e8f3a61): comparing models and database must not see drift.
DIALECT_ONLY_INDEXES = frozenset(
    {"ix_events_summary_fts", "ix_event_facts_content_fts", "ix_profile_entries_keyword_fts"}
)


# Columns some databases only have: memory_vectors.embedding where pgvector could be created.
OPTIONAL_COLUMNS = frozenset({("memory_vectors", "embedding")})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """alembic's include_object hook, for env.py and the drift test alike."""
    if type_ == "column" and reflected and compare_to is None:
        table = getattr(getattr(obj, "table", None), "name", None)
        if (table, name) in OPTIONAL_COLUMNS:
            return False
    return not (type_ == "index" and name in DIALECT_ONLY_INDEXES)


def script_location() -> Path:
    """alembic/ at the repository root, or its copy inside an installed wheel."""
    for candidate in (_PACKAGE_DIR / "_alembic", _PACKAGE_DIR.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("alembic migrations not found next to the powermemo_gql package")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def upgrade_database(settings: Settings) -> None:
    """The configured database to head (`migrate`, migrate_on_startup), over an engine of
    its own: migrations run without the statement timeout of requests."""
    engine = create_migration_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def pending_revisions(engine: AsyncEngine) -> bool:
    """True when the database is behind the newest migration."""

    def check(connection: Connection) -> bool:
        current = set(MigrationContext.configure(connection).get_current_heads())
        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        return current != heads

    async with engine.connect() as connection:
        return await connection.run_sync(check)
