"""GraphQL over HTTP: malformed bodies, media types and status codes, operation choice."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.support import ProjectHandle

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def _post(
    app: Starlette, project: ProjectHandle, content: bytes, **headers: str
) -> httpx.Response:
    # The app's exceptions become 500s here, as a real server would answer them.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(
            "/graphql",
            content=content,
            headers={**project.api.headers(), "content-type": "application/json", **headers},
        )


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


MALFORMED: dict[str, tuple[bytes, str]] = {
    "a string": (b'"x"', "INVALID_REQUEST"),
    "a number": (b"123", "INVALID_REQUEST"),
    "null": (b"null", "INVALID_REQUEST"),
    "an empty array (batching off)": (b"[]", "INVALID_REQUEST"),
    "nested 1,000 deep": (b"[" * 1000 + b"]" * 1000, "INVALID_JSON"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "INVALID_JSON"),
    "variables nested 500 deep": (
        b'{"query": "{ __typename }", "variables": {"v": ' + b"[" * 500 + b"]" * 500 + b"}}",
        "INVALID_JSON",
    ),
    "an integer of 4,301 digits": (
        b'{"query": "{ __typename }", "variables": {"v": ' + b"7" * 4301 + b"}}",
        "INVALID_JSON",
    ),
    "NaN": (b'{"query": "{ __typename }", "variables": {"v": NaN}}', "INVALID_JSON"),
    "Infinity": (b'{"query": "{ __typename }", "variables": {"v": -Infinity}}', "INVALID_JSON"),
    "invalid UTF-8": (b'{"query": "{ __typename \xff }"}', "INVALID_JSON"),
    "not JSON at all": (b"{query", "INVALID_JSON"),
    "no query": (b"{}", "INVALID_REQUEST"),
    "a query that is not a string": (b'{"query": ["{ __typename }"]}', "INVALID_REQUEST"),
    "variables that are not an object": (
        b'{"query": "{ __typename }", "variables": [1]}',
        "INVALID_REQUEST",
    ),
    "an operationName that is not a string": (
        b'{"query": "{ __typename }", "operationName": 1}',
        "INVALID_REQUEST",
    ),
    "extensions that are not an object": (
        b'{"query": "{ __typename }", "extensions": "x"}',
        "INVALID_REQUEST",
    ),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_a_malformed_body_is_a_coded_400_without_a_traceback(
    app: Starlette, project: ProjectHandle, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    content, code = MALFORMED[kind]
    with caplog.at_level(logging.INFO):
        response = await _post(app, project, content)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert _code(response) == code
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_the_media_type_is_matched_without_regard_to_case(
    app: Starlette, project: ProjectHandle
) -> None:
    response = await _post(
        app,
        project,
        b'{"query": "{ __typename }"}',
        **{"content-type": "Application/JSON; charset=utf-8"},
    )
    assert response.json() == {"data": {"__typename": "Query"}}


async def _status_and_body(
    app: Starlette, project: ProjectHandle, payload: bytes, accept: str
) -> tuple[int, str, dict[str, Any]]:
    response = await _post(app, project, payload, accept=accept)
    return response.status_code, response.headers["content-type"], response.json()


REQUEST_ERRORS = {
    "parse": b'{"query": "{ __typename"}',
    "validation": b'{"query": "{ nope }"}',
    "variable coercion": b'{"query": "query($n: Int!) { users(first: $n) { nodes { id } } }", '
    b'"variables": {"n": "many"}}',
}


@pytest.mark.parametrize("kind", list(REQUEST_ERRORS))
async def test_request_errors_are_400_with_graphql_response_json_only(
    app: Starlette, project: ProjectHandle, kind: str
) -> None:
    payload = REQUEST_ERRORS[kind]
    status, media_type, body = await _status_and_body(app, project, payload, GRAPHQL_RESPONSE)
    assert (status, media_type) == (400, GRAPHQL_RESPONSE)
    assert "data" not in body  # nothing ran
    assert body["errors"]
    status, media_type, body = await _status_and_body(app, project, payload, "application/json")
    assert (status, media_type) == (200, "application/json")
    assert "data" not in body
    assert body["errors"]


async def test_a_request_that_executes_is_200_even_with_field_errors(
    app: Starlette, project: ProjectHandle
) -> None:
    ran = b'{"query": "{ __typename }"}'
    assert await _status_and_body(app, project, ran, GRAPHQL_RESPONSE) == (
        200,
        GRAPHQL_RESPONSE,
        {"data": {"__typename": "Query"}},
    )
    forbidden = b'{"query": "{ projects(first: 1) { nodes { id } } }"}'  # root token only
    status, media_type, body = await _status_and_body(app, project, forbidden, GRAPHQL_RESPONSE)
    assert (status, media_type) == (200, GRAPHQL_RESPONSE)
    assert "data" in body
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_several_operations_need_an_operation_name(
    app: Starlette, project: ProjectHandle
) -> None:
    document = b'"query A { a: __typename } query B { b: __typename }"'
    unnamed = await _post(app, project, b'{"query": ' + document + b"}")
    named = await _post(app, project, b'{"query": ' + document + b', "operationName": "B"}')
    unknown = await _post(app, project, b'{"query": ' + document + b', "operationName": "C"}')
    assert "data" not in unnamed.json()
    assert _code(unnamed) == "OPERATION_NAME_REQUIRED"
    assert named.json() == {"data": {"b": "Query"}}
    assert unknown.status_code == 400
    assert _code(unknown) == "INVALID_REQUEST"


async def test_a_subscription_over_post_is_refused_plainly(
    app: Starlette, project: ProjectHandle
) -> None:
    subscription = b'{"query": "subscription { profileUpdated(userId: \\"u\\") { kind } }"}'
    response = await _post(app, project, subscription)
    assert response.status_code == 400
    assert _code(response) == "SUBSCRIPTION_OVER_HTTP"
    assert "websocket" in response.json()["errors"][0]["message"]


async def test_get_is_refused_in_the_graphql_error_shape(
    app: Starlette, project: ProjectHandle
) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(
            "/graphql",
            params={"query": "{ __typename }"},
            headers={**project.api.headers(), "accept": "application/json"},
        )
    assert response.status_code == 405
    assert _code(response) == "METHOD_NOT_ALLOWED"
