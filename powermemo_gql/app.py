"""create_app(settings) -> Starlette. The lifespan owns the engine and the pub/sub broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from powermemo_gql import __version__
from powermemo_gql.core import migrations, tokens
from powermemo_gql.core.clock import Clock
from powermemo_gql.core.gc_tuning import FreezeSurvivors
from powermemo_gql.graphql import graphiql
from powermemo_gql.graphql.schema import build_schema
from powermemo_gql.graphql.view import GraphQLView
from powermemo_gql.mcp.http import MCPEndpoint
from powermemo_gql.observability.gc_pauses import GcPauses
from powermemo_gql.observability.logs import RequestIdMiddleware, scrub_access_log
from powermemo_gql.observability.metrics import MetricsMiddleware, metrics_authorized
from powermemo_gql.recall import pgvector
from powermemo_gql.recall.embeddings import Embedder
from powermemo_gql.resources import Resources
from powermemo_gql.settings import Settings

logger = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
DASHBOARD_PAGE = DASHBOARD_DIR / "index.html"
# The page's scripts, by name: a fixed list, so no request names any other file.
DASHBOARD_SCRIPTS = frozenset({"app.js", "ops.js"})


class RootTokenRequired(RuntimeError):
    """Production mode without POWERMEMO_ROOT_TOKEN: refusing to start."""


def check_startable(settings: Settings) -> None:
    if settings.is_production and settings.root_token is None:
        raise RootTokenRequired(
            "production mode needs a root token: set POWERMEMO_ROOT_TOKEN "
            "(at least 16 characters) in the environment"
        )


async def _warn_if_schema_behind(resources: Resources) -> None:
    try:
        behind = await migrations.pending_revisions(resources.engine)
    except Exception:  # an unreachable database is reported by /readyz; start anyway
        logger.warning("database unreachable at startup", exc_info=True)
        return
    if behind:
        logger.warning("database schema is behind; run `powermemo-gql migrate`")


async def _detect_pgvector(resources: Resources) -> None:
    try:
        await pgvector.detect(resources.engine)
    except Exception:  # unreachable: asked again on first use (recall/pgvector.py)
        logger.warning("could not check for pgvector at startup", exc_info=True)


def _up(answered: bool) -> str:
    return "ok" if answered else "down"


def create_app(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    clock: Clock | None = None,
    tune_gc: bool = False,
) -> Starlette:
    """`embedder`, `clock`: a test's own, instead of the configured provider and the system
    clock. `tune_gc`: the process is this server's alone (`serve`), so it may freeze what
    survives full collections (core/gc_tuning.py)."""
    check_startable(settings)
    scrub_access_log()
    resources = Resources.create(settings, embedder, clock)
    gc_pauses = GcPauses(resources.metrics.gc_pauses)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if settings.migrate_on_startup:
            await migrations.upgrade_database(settings)  # cannot start on an unmigrated schema
        else:
            await _warn_if_schema_behind(resources)
        await _detect_pgvector(resources)
        # The token counter's vocabulary takes about a second to load: not on the first insert.
        await asyncio.to_thread(tokens.encoding)
        scheduler = (
            asyncio.create_task(resources.flusher.run_scheduler())
            if settings.background_flushes
            else None
        )
        await graphql.start()
        # Embeds what after-commit pokes left behind (no-op without an embedder).
        indexing = asyncio.create_task(resources.indexer.run(settings.embedding_catchup_seconds))
        survivors = FreezeSurvivors(asyncio.get_running_loop()) if tune_gc else None
        if survivors is not None:
            survivors.start()  # its one start-up collection is not a pause anyone waits on
        gc_pauses.start()
        try:
            async with mcp.lifespan():  # the SDK's session manager serves /mcp
                yield
        finally:
            indexing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await indexing
            await graphql.stop()
            if scheduler is not None:
                scheduler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scheduler
            await resources.close()
            gc_pauses.stop()
            if survivors is not None:
                survivors.stop()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(_request: Request) -> Response:
        # A busy database (every request-pool connection in use) still answers: ready, so a
        # load balancer does not drain every instance during a spike. Down is 503.
        database, pubsub, llm = await asyncio.gather(
            resources.database_status(), resources.pubsub_ok(), resources.llm_ok()
        )
        ready = database != "down" and pubsub
        # Without the LLM the API still serves reads and writes (flushes wait and retry):
        # reported, "degraded", but not taken out of service.
        status = ("ready" if llm else "degraded") if ready else "unavailable"
        checks = {"database": database, "pubsub": _up(pubsub), "llm": _up(llm)}
        return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        if not metrics_authorized(settings, request.headers.get("authorization")):
            return Response(
                "metrics need the metrics token\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="powermemo-metrics"'},
            )
        return Response(resources.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def home(_request: Request) -> Response:
        return RedirectResponse("/graphql")

    async def dashboard(_request: Request) -> Response:
        # A static page: it asks the visitor for an API key and talks GraphQL itself.
        return HTMLResponse(DASHBOARD_PAGE.read_text(encoding="utf-8"))

    async def dashboard_script(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in DASHBOARD_SCRIPTS:
            return Response("not found\n", status_code=404, media_type="text/plain")
        script = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        return Response(script, media_type="text/javascript")

    graphql = GraphQLView(resources, schema=build_schema(settings))
    mcp = MCPEndpoint(resources, graphql.authenticator)  # one failure throttle for both
    routes: list[BaseRoute] = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/dashboard", dashboard),
        Route("/dashboard/{name}", dashboard_script),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]),
    ]
    if settings.graphiql_enabled:  # its files from installed packages, never a CDN
        routes.append(Mount(graphiql.ASSETS_PATH, graphiql.assets()))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestIdMiddleware),  # outermost: every log line has the request id
            Middleware(MetricsMiddleware, metrics=resources.metrics),
        ],
    )
    app.state.resources = resources
    return app
