"""Faults the API must ride out: an exhausted connection pool, Redis down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.resources import Resources
from tests.conftest import TEST_DATABASE_URL, make_settings
from tests.support import ROOT_TOKEN, Api, create_project


@asynccontextmanager
async def _app(database_url: str, **overrides: Any) -> AsyncIterator[Starlette]:
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


async def _get(app: Starlette, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        return await client.get(path)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="connection pools are PostgreSQL's")
async def test_exhausted_pool_gives_a_coded_error_and_liveness_still_answers(
    database_url: str,
) -> None:
    async with _app(database_url, database_pool_size=1, database_pool_timeout=0.3) as app:
        project = await create_project(app, Api(app, ROOT_TOKEN), "pool")
        resources: Resources = app.state.resources
        async with resources.engine.connect() as hog:  # the only connection, held
            assert hog is not None
            by_key = await project.api.post({"query": "{ health { ok } }"})
            by_root = await Api(app, ROOT_TOKEN).post({"query": "{ projects { nodes { id } } }"})
            alive = await _get(app, "/healthz")
        after = await project.api.post({"query": "{ users { nodes { id } } }"})
    # The API key cannot even be checked: refused before GraphQL, with a code.
    assert by_key.status_code == 503
    assert by_key.json()["errors"][0]["extensions"]["code"] == "DATABASE_BUSY"
    # The root token needs no lookup: the resolver's wait times out, reported as such.
    assert by_root.json()["errors"][0]["extensions"]["code"] == "DATABASE_BUSY"
    assert alive.status_code == 200
    assert after.status_code == 200
    assert "errors" not in after.json()


async def test_api_keeps_serving_with_redis_down(database_url: str) -> None:
    async with _app(database_url, redis_url="redis://127.0.0.1:1/0") as app:
        project = await create_project(app, Api(app, ROOT_TOKEN), "no-redis")
        api = project.api
        await api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
        await api.ok(
            'mutation { insertBlob(input: {userId: "alice", blob: {document: {content: "x"}}})'
            " { __typename } }"
        )
        await api.ok(
            'mutation { addProfileEntry(input: {userId: "alice", topic: "a", subTopic: "b",'
            ' content: "c"}) { __typename } }'
        )
        read = await api.ok(
            '{ user(userId: "alice") { profile { content } changes { nodes { kind } } } }'
        )
        ready = await _get(app, "/readyz")
    assert read["user"]["profile"] == [{"content": "c"}]
    assert read["user"]["changes"]["nodes"] == [{"kind": "ENTRY_ADDED"}]  # recorded all the same
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "pubsub": "down", "llm": "down"}
