"""`powermemo-gql mcp`: the MCP server over stdio, in-process on the configured database.

Agents start it as a local subprocess; the API key given at start picks the project (it is
checked like any key: unknown or revoked keys are refused). stdout is the protocol: logs go
to stderr. Flushes asked for by `flush` run here; background flushes stay with the server
or worker that shares the database."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from powermemo_gql.core import migrations
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.mcp.server import build_server
from powermemo_gql.projects.auth import authenticate
from powermemo_gql.resources import Resources
from powermemo_gql.settings import Settings, SettingsError


def _fail(message: str) -> int:
    print(f"powermemo-gql mcp: {message}", file=sys.stderr)
    return 2


async def run_stdio(settings: Settings, key: str | None) -> int:
    if not key:
        return _fail("give a project's API key: --key, or POWERMEMO_API_KEY in the environment")
    # Our process flushes only when asked: a running server or worker owns the schedule.
    settings = settings.model_copy(update={"background_flushes": False})
    try:
        resources = Resources.create(settings)
    except SettingsError as exc:  # found while building resources (the embedding provider)
        return _fail(f"configuration error: {exc}")
    try:
        if settings.migrate_on_startup:
            await migrations.upgrade(resources.engine)
        async with unit_of_work(resources.sessions) as session:
            principal = await authenticate(session, key, None)  # never the root token
        if principal is None or principal.project_id is None:
            return _fail("the API key is unknown or revoked")
        indexing = asyncio.create_task(
            resources.indexer.run(settings.embedding_catchup_seconds)
        )  # embeds what tools write
        try:
            await build_server(resources, principal.project_id).run_stdio_async()
        finally:
            indexing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await indexing
    finally:
        await resources.close()
    return 0
