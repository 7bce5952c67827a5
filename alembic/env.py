"""Alembic environment. Runs on a connection handed in by powermemo_gql.core.migrations,
or, for `alembic` on the command line, on the database named by the settings."""

from __future__ import annotations

import asyncio
import logging.config

from sqlalchemy import Connection, text
from sqlmodel import SQLModel

import powermemo_gql.all_models  # noqa: F401  (registers every table)
from alembic import context
from powermemo_gql.core.db import create_migration_engine
from powermemo_gql.core.migrations import include_object

config = context.config
target_metadata = SQLModel.metadata

# Serialises migrations when several server instances start at once on PostgreSQL.
_MIGRATION_LOCK_ID = 0x706D656D6F  # "pmemo"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    from powermemo_gql.settings import load_settings

    engine = create_migration_engine(load_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    if config.config_file_name is not None:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_from_settings())
