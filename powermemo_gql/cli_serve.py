"""`powermemo-gql serve` and `powermemo-gql worker`: the server, and the background loops
without it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys

from pydantic import SecretStr

from powermemo_gql.core import migrations
from powermemo_gql.projects import dev_token
from powermemo_gql.projects.dev_token import DevTokenError
from powermemo_gql.settings import Settings, SettingsError

logger = logging.getLogger("powermemo_gql")


def _with_dev_token(settings: Settings) -> Settings:
    """Development convenience: the root token kept beside the SQLite database (the same one
    after every restart), else a fresh one for this run; printed either way."""
    path = dev_token.token_file(settings.database_url)
    if path is None:
        token, where = secrets.token_urlsafe(24), "this run's root token (PostgreSQL: not stored)"
    else:
        token, created = dev_token.load_or_create(path)
        where = f"root token {'stored in' if created else 'read from'} {path.resolve()}"
    print(
        f"powermemo-gql: development mode, no POWERMEMO_ROOT_TOKEN set; {where}:\n\n"
        f"    {token}\n\n(GraphiQL on this machine has it in its headers already)",
        file=sys.stderr,
        flush=True,
    )
    return settings.model_copy(update={"root_token": SecretStr(token)})


def serve(settings: Settings) -> int:
    """Start the HTTP server (uvicorn, one process) until it is told to stop."""
    import uvicorn

    from powermemo_gql.app import RootTokenRequired, create_app

    if settings.root_token is None and not settings.is_production:
        try:
            settings = _with_dev_token(settings)
        except DevTokenError as exc:
            print(f"powermemo-gql: refusing to start: {exc}", file=sys.stderr)
            return 2
    try:
        app = create_app(settings, tune_gc=True)
    except RootTokenRequired as exc:
        print(f"powermemo-gql: refusing to start: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # found while building resources (the embedding provider)
        print(f"powermemo-gql: configuration error: {exc}", file=sys.stderr)
        return 2
    if settings.graphiql_enabled:
        print(
            f"powermemo-gql: GraphiQL at http://{settings.host}:{settings.port}/graphql",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep ours: JSON in production, request ids everywhere
        # A websocket message is capped like a request body: bigger ones close with 1009.
        ws_max_size=settings.max_request_bytes,
        # Change messages are a few hundred bytes: compressing each one again for each socket
        # cost a third of a fan-out's CPU, and zlib state per socket, for little gain.
        ws_per_message_deflate=False,
    )
    return 0


async def run_worker(settings: Settings) -> int:
    """The flush scheduler and the indexer's catch-up loop without the HTTP server; stops
    cleanly on SIGTERM or SIGINT."""
    from powermemo_gql.resources import Resources

    try:
        resources = Resources.create(settings.model_copy(update={"background_flushes": True}))
    except SettingsError as exc:  # found while building resources (the embedding provider)
        print(f"powermemo-gql: configuration error: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if settings.migrate_on_startup:
            await migrations.upgrade(resources.engine)
        # As in every server: embeds the rows its own pokes (or anyone's) left behind.
        loops = [
            asyncio.create_task(resources.flusher.run_scheduler()),
            asyncio.create_task(resources.indexer.run(settings.embedding_catchup_seconds)),
        ]
        logger.info("worker started: flushing buffers, embedding what waits")
        await stop.wait()
        for loop_task in loops:
            loop_task.cancel()
        for loop_task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
    finally:
        await resources.close()  # lets running flushes finish for a while
    logger.info("worker stopped")
    return 0
