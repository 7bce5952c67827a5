"""Without pre-ping, a pooled connection the server closed must not fail the next request."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from powermemo_gql.core.db import create_engine
from tests.conftest import TEST_DATABASE_URL, make_settings

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")


async def test_a_connection_the_server_terminated_is_replaced_at_checkout(
    database_url: str,
) -> None:
    engine = create_engine(make_settings(database_url, database_pool_size=1))
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # The pool keeps that one connection; the server ends it (as a restart would).
        other = create_engine(make_settings(database_url))
        try:
            async with other.connect() as killer:
                await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            await other.dispose()
        await asyncio.sleep(0.3)  # the closed socket reaches the driver on the event loop
        async with engine.connect() as connection:
            again = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    finally:
        await engine.dispose()
    assert again != pid
