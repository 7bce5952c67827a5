"""One error policy: expected errors are typed, bad input is named, the unexpected is masked."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette

from powermemo_gql.users.service import UserService
from tests.support import ProjectHandle


async def test_unexpected_error_is_masked_but_coded_and_logged(
    project: ProjectHandle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("SELECT password FROM secrets")

    monkeypatch.setattr(UserService, "get", explode)
    with caplog.at_level(logging.ERROR):
        response = await project.api.run('{ user(userId: "u1") { id } }')
    assert response.data == {"user": None}
    assert len(response.errors) == 1
    error = response.errors[0]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert error["path"] == ["user"]
    assert "password" not in str(response.errors)
    assert "SELECT password FROM secrets" in caplog.text  # the operator still sees it


async def test_graphql_validation_errors_stay_readable(project: ProjectHandle) -> None:
    response = await project.api.post({"query": "{ user(userId: 1) { nope } }"})
    errors = response.json()["errors"]
    assert any("nope" in e["message"] for e in errors)
    assert all(e["message"] != "Internal server error." for e in errors)


INSERT_BLOB = "mutation($input: InsertBlobInput!) { insertBlob(input: $input) { __typename } }"


async def test_wrong_variable_type_names_the_field(project: ProjectHandle) -> None:
    response = await project.api.post(
        {
            "query": INSERT_BLOB,
            "variables": {
                "input": {
                    "userId": "u1",
                    "blob": {"chat": {"messages": [{"role": "BOSS", "content": "hi"}]}},
                }
            },
        }
    )
    message = response.json()["errors"][0]["message"]
    assert "role" in message
    assert "BOSS" in message


async def test_get_queries_are_refused(app: Starlette, project: ProjectHandle) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get(
            "/graphql", params={"query": "{ health { ok } }"}, headers=project.api.headers()
        )
    assert response.status_code in (400, 405)
    assert "health" not in response.text
