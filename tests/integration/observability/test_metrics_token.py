"""/metrics shows every tenant's counts: with metrics_token set, only its bearer sees them."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from powermemo_gql.app import create_app
from tests.conftest import make_settings
from tests.support import ROOT_TOKEN

METRICS_TOKEN = "metrics-token-0123456789"


async def _get_metrics(
    database_url: str, headers: dict[str, str], **settings: object
) -> httpx.Response:
    app = create_app(make_settings(database_url, **settings))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/metrics", headers=headers)


async def test_metrics_without_the_token_are_401(database_url: str) -> None:
    response = await _get_metrics(database_url, {}, metrics_token=METRICS_TOKEN)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "powermemo_http_requests" not in response.text


async def test_metrics_with_another_token_are_401(database_url: str) -> None:
    for wrong in (ROOT_TOKEN, METRICS_TOKEN + "x", METRICS_TOKEN[:-1]):
        response = await _get_metrics(
            database_url, {"Authorization": f"Bearer {wrong}"}, metrics_token=METRICS_TOKEN
        )
        assert response.status_code == 401, wrong


async def test_metrics_with_the_token_are_served(database_url: str) -> None:
    response = await _get_metrics(
        database_url, {"Authorization": f"Bearer {METRICS_TOKEN}"}, metrics_token=METRICS_TOKEN
    )
    assert response.status_code == 200
    assert "powermemo_http_requests" in response.text


async def test_metrics_are_open_when_no_token_is_set(database_url: str) -> None:
    response = await _get_metrics(database_url, {})
    assert response.status_code == 200
    assert "powermemo_http_requests" in response.text
