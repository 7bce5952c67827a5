"""The API's guard rails: query limits, introspection, suggestions, batching, body size,
media type, rate limits and the parser/validation caches."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.core.ratelimit import RedisRateLimiter
from tests.conftest import make_settings
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

AppFactory = Callable[..., Any]


@pytest.fixture
def app_with(database_url: str) -> AppFactory:
    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[Starlette, ProjectHandle]]:
        app = create_app(make_settings(database_url, **overrides))
        async with LifespanManager(app):
            project = await create_project(app, Api(app, ROOT_TOKEN), uuid.uuid4().hex)
            yield app, project

    return start


async def _raw(app: Starlette, content: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        return await client.post("/graphql", content=content, headers=headers)


def _messages(response: httpx.Response) -> str:
    return " ".join(e["message"] for e in response.json().get("errors", []))


async def test_depth_limit(project: ProjectHandle) -> None:
    inner = "id"
    for _ in range(8):
        inner = f"user {{ blobs {{ nodes {{ {inner} }} }} }}"
    response = await project.api.post({"query": f'{{ blob(id: "x") {{ {inner} }} }}'})
    assert "exceeds maximum operation depth" in _messages(response)
    shallow = await project.api.post({"query": '{ blob(id: "x") { user { id } } }'})
    assert shallow.json() == {"data": {"blob": None}}


async def test_alias_limit(project: ProjectHandle) -> None:
    many = " ".join(f"a{i}: health {{ ok }}" for i in range(31))
    response = await project.api.post({"query": f"{{ {many} }}"})
    assert "aliases" in _messages(response).lower()
    few = " ".join(f"a{i}: health {{ ok }}" for i in range(30))
    assert "errors" not in (await project.api.post({"query": f"{{ {few} }}"})).json()


async def test_token_limit(app_with: AppFactory) -> None:
    async with app_with(max_query_tokens=100) as (_app, project):
        long_query = "{ " + " ".join(f"a{i}: health {{ ok }}" for i in range(20)) + " }"
        response = await project.api.post({"query": long_query})
    assert "token" in _messages(response).lower()


async def test_directive_limit(project: ProjectHandle) -> None:
    fields = " ".join(f"a{i}: health @include(if: true) {{ ok }}" for i in range(21))
    response = await project.api.post({"query": f"{{ {fields} }}"})
    assert "exceeds the 20 directives allowed" in _messages(response)


async def test_introspection_and_suggestions_follow_the_mode(app_with: AppFactory) -> None:
    introspect = {"query": "{ __schema { queryType { name } } }"}
    typo = {"query": "{ helth { ok } }"}
    async with app_with(mode="development") as (_app, dev):
        assert (await dev.api.post(introspect)).json()["data"]["__schema"]["queryType"] == {
            "name": "Query"
        }
        assert "Did you mean" in _messages(await dev.api.post(typo))
    async with app_with(mode="production") as (_app, prod):
        assert "introspection" in _messages(await prod.api.post(introspect)).lower()
        refused = _messages(await prod.api.post(typo))
        assert "helth" in refused
        assert "Did you mean" not in refused


async def test_batching_is_off_by_default_and_capped_when_on(
    project: ProjectHandle, app_with: AppFactory
) -> None:
    batch = [{"query": "{ health { ok } }"}] * 2
    refused = await project.api.post(batch)
    assert refused.status_code == 400
    async with app_with(max_batch_operations=2) as (_app, batching):
        answered = await batching.api.post(batch)
        assert [r["data"] for r in answered.json()] == [{"health": {"ok": True}}] * 2
        too_many = await batching.api.post(batch + batch[:1])
        assert too_many.status_code == 400


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_only_json_is_accepted(
    app: Starlette, project: ProjectHandle, content_type: str
) -> None:
    response = await _raw(
        app,
        b'{"query": "{ health { ok } }"}',
        {**project.api.headers(), "content-type": content_type},
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_request_body_is_capped(app_with: AppFactory) -> None:
    async with app_with(max_request_bytes=2048) as (app, project):
        body = b'{"query": "{ health { ok } }", "variables": {"x": "' + b"y" * 3000 + b'"}}'
        headers = {**project.api.headers(), "content-type": "application/json"}
        declared = await _raw(app, body, headers)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            streamed = await client.post("/graphql", content=chunks(), headers=headers)
        small = await _raw(app, b'{"query": "{ health { ok } }"}', headers)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert small.status_code == 200


async def test_rate_limit_per_api_key(app_with: AppFactory) -> None:
    async with app_with(rate_limit_per_minute=3) as (app, project):
        other = await create_project(app, Api(app, ROOT_TOKEN), "other")
        statuses = [(await project.api.post({"query": "{ health { ok } }"})) for _ in range(4)]
        other_ok = await other.api.post({"query": "{ health { ok } }"})
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    limited = statuses[-1]
    assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert other_ok.status_code == 200


async def test_rate_limit_lets_requests_through_when_redis_is_down() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", limit=1)
    try:
        verdicts = [await limiter.hit("key") for _ in range(3)]
    finally:
        await limiter.close()
    assert all(v.allowed for v in verdicts)


async def test_parser_and_validation_caches_are_used(project: ProjectHandle) -> None:
    from strawberry.extensions.parser_cache import _get_parse_cache
    from strawberry.extensions.validation_cache import _get_validate_cache

    def hits(cache: Any) -> int:  # an functools.lru_cache wrapper
        return int(cache.cache_info().hits)

    parse_hits = hits(_get_parse_cache(1000))
    validate_hits = hits(_get_validate_cache(1000))
    query = {"query": "{ health { ok database } }"}
    for _ in range(3):
        assert (await project.api.post(query)).status_code == 200
    assert hits(_get_parse_cache(1000)) >= parse_hits + 2
    assert hits(_get_validate_cache(1000)) >= validate_hits + 2


UNSTORABLE = ["a\x00b", "\ud800"]  # NUL (PostgreSQL text cannot hold it); a lone surrogate


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "lone-surrogate"])
async def test_text_no_database_can_store_is_refused_as_bad_input(
    app: Starlette, project: ProjectHandle, text: str
) -> None:
    headers = {**project.api.headers(), "Content-Type": "application/json"}

    async def send(payload: dict[str, Any]) -> httpx.Response:
        # json.dumps escapes as \uXXXX, so even a lone surrogate travels as valid JSON.
        return await _raw(app, json.dumps(payload).encode(), headers)

    escaped = json.dumps(text)  # a GraphQL string literal with the same escapes
    as_literal = await send(
        {"query": f"mutation {{ createUser(input: {{id: {escaped}}}) {{ __typename }} }}"}
    )
    as_variable = await send(
        {
            "query": "mutation($data: JSON, $id: ID!) "
            "{ createUser(input: {id: $id, data: $data}) { __typename } }",
            "variables": {"id": "alice", "data": {"notes": ["fine", text]}},
        }
    )
    as_argument = await send(
        {
            "query": "mutation($name: String!) "
            "{ createProject(input: {name: $name}) { __typename } }",
            "variables": {"name": text},
        }
    )
    if "\x00" in text:
        checked = [as_literal, as_variable, as_argument]
    else:  # the GraphQL parser itself refuses a lone surrogate escape in a document
        assert "Invalid Unicode escape" in _messages(as_literal)
        checked = [as_variable, as_argument]
    for response in checked:
        assert response.status_code == 200
        errors = response.json()["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], errors
    assert as_variable.json()["errors"][0]["extensions"]["field"] == "$data.notes[1]"
    assert as_argument.json()["errors"][0]["extensions"]["field"] == "$name"
    users = await project.api.ok("{ users(first: 5) { nodes { id } } }")
    assert users["users"]["nodes"] == []
