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
from powermemo_gql.graphql.validation import verdict_cache_hits
from powermemo_gql.projects.service import ProjectService
from tests.conftest import make_settings
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

AppFactory = Callable[..., Any]


@pytest.fixture
def app_with(database_url: str) -> AppFactory:
    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[Starlette, ProjectHandle]]:
        app = create_app(make_settings(database_url, **overrides))
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
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
    response = await project.api.post({"query": f'{{ blob(id: "QmxvYjp4") {{ {inner} }} }}'})
    assert "exceeds maximum operation depth" in _messages(response)
    shallow = await project.api.post({"query": '{ blob(id: "QmxvYjp4") { user { id } } }'})
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


@pytest.mark.usefixtures("fresh_rate_window")
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

    def hits(cache: Any) -> int:  # an functools.lru_cache wrapper
        return int(cache.cache_info().hits)

    parse_hits = hits(_get_parse_cache(1000))
    validate_hits = verdict_cache_hits()  # our validation (with the limits) has its own cache
    query = {"query": "{ health { ok database } }"}
    for _ in range(3):
        assert (await project.api.post(query)).status_code == 200
    assert hits(_get_parse_cache(1000)) >= parse_hits + 2
    assert verdict_cache_hits() >= validate_hits + 2


UNSTORABLE = ["a\x00b", "\ud800"]  # NUL (PostgreSQL text cannot hold it); a lone surrogate

# Every string input of the API, each given text no database can store ($t).
PROJECT_OPERATIONS = [
    "mutation($t: ID) { createUser(input: {userId: $t}) { __typename } }",
    'mutation($t: String!) { createUser(input: {userId: "u2", data: {k: $t}}) { __typename } }',
    'mutation($t: String!) { insertBlob(input: {userId: "u1", blob: {chat: {messages: '
    "[{role: USER, content: $t}]}}}) { __typename } }",
    'mutation($t: String!) { insertBlob(input: {userId: "u1", blob: {chat: {messages: '
    '[{role: USER, content: "x", alias: $t}]}}}) { __typename } }',
    'mutation($t: String!) { insertBlob(input: {userId: "u1", blob: {document: '
    '{content: "x", title: $t}}}) { __typename } }',
    'mutation($t: String!) { insertBlob(input: {userId: "u1", blob: {code: '
    '{content: "x", language: $t}}}) { __typename } }',
    'mutation($t: String!) { insertBlob(input: {userId: "u1", blob: {image: '
    '{url: "https://example.com/a.png", caption: $t}}}) { __typename } }',
    'mutation($t: String!) { insertBlob(input: {userId: "u1", blob: {transcript: '
    '{segments: [{text: "x", speaker: $t}]}}}) { __typename } }',
    'mutation($t: String!) { insertBlob(input: {userId: "u1", fields: {k: $t}, blob: '
    '{document: {content: "x"}}}) { __typename } }',
    'mutation($t: String!) { addProfileEntry(input: {userId: "u1", topic: $t, subTopic: "s", '
    'content: "c"}) { __typename } }',
    'mutation($t: String!) { addProfileEntry(input: {userId: "u1", topic: "t", subTopic: "s", '
    "content: $t}) { __typename } }",
    'mutation($t: String!) { importProfile(input: {userId: "u1", text: $t}) { __typename } }',
    "mutation($t: String!) { setProfileConfig(input: {slots: [{topic: $t}]}) { __typename } }",
    'mutation($t: String!) { setProfileConfig(input: {slots: [{topic: "t", description: $t, '
    "subTopics: [{name: $t}]}]}) { __typename } }",
    'mutation($t: String!) { setProfileConfig(input: {eventTags: [{name: "mood", '
    "description: $t}]}) { __typename } }",
    "query($t: String!) { users(first: 1, search: $t) { nodes { id } } }",
    "query($t: ID!) { user(userId: $t) { id } }",
    'query($t: String!) { user(userId: "u1") { profile(topics: [$t]) { id } } }',
    'query($t: String!) { user(userId: "u1") { context(onlyTopics: [$t]) { text } } }',
    'query($t: String!) { user(userId: "u1") { events(first: 1, search: $t) { nodes { id } } } }',
]
ROOT_OPERATIONS = [
    "mutation($t: String!) { createProject(input: {name: $t}) { __typename } }",
]


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "lone-surrogate"])
async def test_text_no_database_can_store_is_refused_never_an_internal_error(
    app: Starlette, project: ProjectHandle, text: str
) -> None:
    """Refused as a typed InvalidInput where the service knows the field, else as
    BAD_USER_INPUT; stored on neither database."""
    await project.api.ok('mutation { createUser(input: {userId: "u1"}) { __typename } }')

    async def send(token: str, document: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        # json.dumps escapes as \uXXXX, so even a lone surrogate travels as valid JSON.
        body = json.dumps({"query": document, "variables": {"t": text}}).encode()
        response = await _raw(app, body, headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    operations = [(project.api_key, d) for d in PROJECT_OPERATIONS]
    operations += [(ROOT_TOKEN, d) for d in ROOT_OPERATIONS]
    for token, document in operations:
        answer = await send(token, document)
        codes = [e.get("extensions", {}).get("code") for e in answer.get("errors", [])]
        assert set(codes) <= {"BAD_USER_INPUT"}, (document, answer)
        for result in (answer.get("data") or {}).values():
            if isinstance(result, dict) and "__typename" in result:
                assert result["__typename"] in ("InvalidInput", "NotFound"), (document, answer)
    # Nothing was stored: no second user, no blob, no entry, the default profile config.
    state = await project.api.ok(
        "{ users(first: 5) { nodes { id: userId } } "
        'user(userId: "u1") { blobs(first: 1) { nodes { id } } '
        "profile { id } } profileConfig { slots { topic } eventTags { name } } }"
    )
    assert state["users"]["nodes"] == [{"id": "u1"}]
    assert state["user"] == {"blobs": {"nodes": []}, "profile": []}
    assert state["profileConfig"]["slots"][0]["topic"] == "basic_info"


async def test_unstorable_text_a_service_missed_is_bad_input_not_an_internal_error(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net behind the services' own checks: a database error on a request that
    carries unstorable text is reported as that text's fault, naming where it was."""

    async def database_refuses(*_args: Any) -> None:
        raise ValueError("invalid byte sequence for encoding UTF8: 0x00")  # as asyncpg says

    monkeypatch.setattr(ProjectService, "create_project", database_refuses)
    root = Api(app, ROOT_TOKEN)
    create = "mutation($n: String!) { createProject(input: {name: $n}) { __typename } }"

    unstorable = await root.run(create, n="a\x00b")
    literal = await root.run(
        'mutation { createProject(input: {name: "a\\u0000b"}) { __typename } }'
    )
    unrelated = await root.run(create, n="fine")

    assert unstorable.error_codes() == ["BAD_USER_INPUT"]
    assert unstorable.errors[0]["extensions"]["field"] == "$n"
    assert literal.error_codes() == ["BAD_USER_INPUT"]
    assert literal.errors[0]["extensions"]["field"] == "the string on line 1"
    assert unrelated.error_codes() == ["INTERNAL_SERVER_ERROR"]  # still masked otherwise
