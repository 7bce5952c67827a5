from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from tests.conftest import make_settings
from tests.support import Api


async def _get(app: Starlette, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        return await client.get(path)


async def test_liveness_needs_no_token(app: Starlette) -> None:
    response = await _get(app, "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readiness_checks_database_and_pubsub(app: Starlette) -> None:
    response = await _get(app, "/readyz")
    assert response.status_code == 200
    # The suite's LLM is a closed port: reported, "degraded", yet still in service.
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "pubsub": "ok", "llm": "down"},
    }


async def test_health_query(root: Api) -> None:
    data = await root.ok("{ health { ok database databaseStatus pubsub version uptimeSeconds } }")
    health = data["health"]
    assert health["ok"]
    assert health["database"]
    assert health["databaseStatus"] == "OK"
    assert health["pubsub"]
    assert health["uptimeSeconds"] >= 0


async def _unreachable_database_app(tmp_path: Path) -> AsyncIterator[Starlette]:
    # A SQLite file in a directory that does not exist cannot be opened.
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}"
    app = create_app(make_settings(url))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


async def test_readiness_fails_when_database_is_down(tmp_path: Path) -> None:
    async for app in _unreachable_database_app(tmp_path):
        response = await _get(app, "/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "down"
        assert (await _get(app, "/healthz")).status_code == 200
        data = await Api(app, "test-root-token-0123456789").ok(
            "{ health { ok database databaseStatus } }"
        )
        assert data["health"] == {"ok": False, "database": False, "databaseStatus": "DOWN"}
