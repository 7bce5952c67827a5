"""Failed authentications are throttled per client address: guessing keys gets 429s that
cost no database lookup."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from tests.conftest import make_settings
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

LIMIT = 3
VIEWER = {"query": "{ viewer { isRoot } }"}


@pytest.fixture
async def app(database_url: str, fresh_rate_window: None) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(database_url, auth_failures_per_minute=LIMIT))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
async def project(app: Starlette) -> ProjectHandle:
    return await create_project(app, Api(app, ROOT_TOKEN), "throttled")


def _address() -> str:
    # An address of this test's own: with Redis, counts are shared by every app in the run.
    return str(ipaddress.IPv6Address(secrets.randbits(128)))


async def _post(app: Starlette, address: str, token: str | None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post("/graphql", json=VIEWER, headers=headers)


@contextmanager
def _statements(app: Starlette) -> Iterator[list[str]]:
    engine = app.state.resources.engine.sync_engine
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_after_the_limit_of_failures_the_address_gets_429(
    app: Starlette, project: ProjectHandle
) -> None:
    address = _address()
    failures = [(await _post(app, address, f"pm_guess-{n}")).status_code for n in range(LIMIT)]
    throttled = await _post(app, address, "pm_guess-next")
    with_right_key = await _post(app, address, project.api_key)

    assert failures == [401] * LIMIT
    for response in (throttled, with_right_key):
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_throttled_attempt_costs_no_database_lookup(app: Starlette) -> None:
    address = _address()
    for n in range(LIMIT):
        await _post(app, address, f"pm_guess-{n}")
    with _statements(app) as statements:
        response = await _post(app, address, "pm_guess-next")
    assert response.status_code == 429
    assert statements == []


async def test_other_addresses_are_not_throttled(app: Starlette, project: ProjectHandle) -> None:
    guesser = _address()
    for n in range(LIMIT + 1):
        await _post(app, guesser, f"pm_guess-{n}")
    response = await _post(app, _address(), project.api_key)
    assert response.status_code == 200
    assert response.json()["data"] == {"viewer": {"isRoot": False}}


async def test_successes_and_requests_without_a_token_do_not_count(
    app: Starlette, project: ProjectHandle
) -> None:
    address = _address()
    answers = [(await _post(app, address, project.api_key)).status_code for _ in range(LIMIT + 2)]
    answers += [(await _post(app, address, None)).status_code for _ in range(LIMIT + 2)]
    assert answers == [200] * (LIMIT + 2) + [401] * (LIMIT + 2)
