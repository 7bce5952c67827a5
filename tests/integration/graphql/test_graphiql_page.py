"""GraphiQL's page and files come from this server; the token is pre-filled in development
for a browser on this machine only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from graphql import get_introspection_query

from powermemo_gql.app import create_app
from tests.conftest import make_settings
from tests.support import ROOT_TOKEN

HTML = {"Accept": "text/html"}


@asynccontextmanager
async def _client(
    database_url: str, client: tuple[str, int] = ("127.0.0.1", 50000), **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def _references(page: str) -> list[str]:
    """Every file the page asks for (an inline `data:` icon is no request)."""
    return [r for r in re.findall(r'(?:src|href)="([^"]+)"', page) if not r.startswith("data:")]


async def test_the_page_loads_everything_from_this_server(database_url: str) -> None:
    async with _client(database_url) as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        references = _references(page.text)
        assert "/graphiql/assets/graphiql.min.js" in references
        assert all(ref.startswith("/graphiql/assets/") for ref in references), references
        assert "unpkg" not in page.text
        assert "jsdelivr" not in page.text
        for ref in references:  # each one is there: from the installed package, or ours
            asset = await http.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 100, ref
        assert "React" in (await http.get("/graphiql/assets/react.production.min.js")).text
        # Only the package's static folder is served, nothing beside it.
        assert (await http.get("/graphiql/assets/views.py")).status_code == 404
        assert (await http.get("/graphiql/assets/../graphiql.py")).status_code == 404


async def test_development_prefills_the_root_token_for_loopback_browsers(
    database_url: str,
) -> None:
    async with _client(database_url) as http:
        page = (await http.get("/graphql", headers=HTML)).text
    assert f"Bearer {ROOT_TOKEN}" in page
    async with _client(database_url, client=("::1", 50000)) as http:
        assert f"Bearer {ROOT_TOKEN}" in (await http.get("/graphql", headers=HTML)).text


async def test_no_token_for_a_browser_elsewhere(database_url: str) -> None:
    async with _client(database_url, client=("192.0.2.7", 50000)) as http:
        page = await http.get("/graphql", headers=HTML)
    assert page.status_code == 200
    assert ROOT_TOKEN not in page.text
    assert '"headers": ""' in page.text


async def test_production_serves_no_graphiql_and_no_token(database_url: str) -> None:
    async with _client(database_url, mode="production") as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 404
        assert ROOT_TOKEN not in page.text
        assert (await http.get("/graphiql/assets/graphiql.min.js")).status_code == 404
    # GraphiQL turned on in production by hand still gets no token in its page.
    async with _client(database_url, mode="production", graphiql=True) as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert ROOT_TOKEN not in page.text


async def test_graphiqls_introspection_query_is_answered(database_url: str) -> None:
    # Its fragments are spread below `__schema`: the document limits must see them as used.
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)
    async with _client(database_url) as http:
        answer = await http.post(
            "/graphql",
            json={"query": query, "operationName": "IntrospectionQuery"},
            headers={"Authorization": f"Bearer {ROOT_TOKEN}"},
        )
    body = answer.json()
    assert "errors" not in body, body["errors"]
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "Project"} <= names
