"""insertBlob with an idempotencyKey: a retry returns the first blob and stores nothing twice."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from gql import Client, gql
from sqlalchemy import func, select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.blobs.models import Blob
from powermemo_gql.buffers.models import BufferItem
from powermemo_gql.resources import Resources
from tests.conftest import FAKE_NOW
from tests.support import SCHEMA_SDL, Api, ProjectHandle, raw_uuid

INSERT = """
mutation($userId: ID!, $text: String!, $key: String) {
  insertBlob(input: {
    userId: $userId, idempotencyKey: $key,
    blob: {document: {content: $text}}
  }) {
    __typename
    ... on InsertBlobPayload { replayed blob { id ... on DocumentBlob { content } } }
    ... on InvalidInput { field message }
  }
}
"""
DELETE = "mutation($id: ID!) { deleteBlob(input: {id: $id}) { __typename } }"


@pytest.fixture
async def api(project: ProjectHandle) -> Api:
    await project.api.ok(
        'mutation { a: createUser(input: {userId: "alice"}) { __typename } '
        'b: createUser(input: {userId: "bob"}) { __typename } }'
    )
    return project.api


class Inserter:
    """insertBlob through the app, the body encoded by hand: json.dumps escapes as \\uXXXX,
    so even a lone surrogate travels as valid JSON (httpx would refuse to encode it)."""

    def __init__(self, app: Starlette, project: ProjectHandle) -> None:
        self.app = app
        self.headers = {
            "Authorization": f"Bearer {project.api_key}",
            "Content-Type": "application/json",
        }
        Client(schema=SCHEMA_SDL).validate(gql(INSERT))

    async def __call__(self, text: str, key: str | None, user: str = "alice") -> dict[str, Any]:
        variables = {"userId": user, "text": text, "key": key}
        body = json.dumps({"query": INSERT, "variables": variables}).encode()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        ) as client:
            response = await client.post("/graphql", content=body, headers=self.headers)
        answer = response.json()
        assert "errors" not in answer, answer
        result: dict[str, Any] = answer["data"]["insertBlob"]
        return result


@pytest.fixture
def insert(app: Starlette, project: ProjectHandle) -> Inserter:
    return Inserter(app, project)


async def _stored(app: Starlette) -> tuple[int, int]:
    """(blobs, buffer items) in the database."""
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        blobs = await session.scalar(select(func.count(col(Blob.id))))
        items = await session.scalar(select(func.count(col(BufferItem.id))))
    return int(blobs or 0), int(items or 0)


async def test_a_retry_with_the_same_key_returns_the_first_blob(
    api: Api, app: Starlette, insert: Inserter
) -> None:
    first = await insert("I moved to Lyon.", "chat-42")
    retry = await insert("I moved to Lyon.", "chat-42")

    assert first["__typename"] == retry["__typename"] == "InsertBlobPayload"
    assert first["replayed"] is False
    assert retry["replayed"] is True
    assert retry["blob"]["id"] == first["blob"]["id"]
    assert await _stored(app) == (1, 1)


async def test_a_different_blob_with_a_used_key_gets_the_first_blob(
    api: Api, app: Starlette, insert: Inserter
) -> None:
    first = await insert("first words", "k")
    other = await insert("other words", "k")

    assert other["replayed"] is True
    assert other["blob"] == first["blob"]
    assert other["blob"]["content"] == "first words"
    assert await _stored(app) == (1, 1)


@pytest.mark.fake_clock
async def test_a_blob_with_a_key_is_created_at_the_apps_clock(
    api: Api, app: Starlette, insert: Inserter
) -> None:
    first = await insert("I moved to Lyon.", "chat-42")

    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        stored = await session.get(Blob, raw_uuid(first["blob"]["id"]))
    assert stored is not None
    assert stored.created_at == FAKE_NOW


async def test_keys_are_per_user(api: Api, app: Starlette, insert: Inserter) -> None:
    alice = await insert("hello", "same-key", user="alice")
    bob = await insert("hello", "same-key", user="bob")

    assert [alice["replayed"], bob["replayed"]] == [False, False]
    assert alice["blob"]["id"] != bob["blob"]["id"]
    assert await _stored(app) == (2, 2)


async def test_without_a_key_every_insert_stores_a_blob(
    api: Api, app: Starlette, insert: Inserter
) -> None:
    await insert("hello", None)
    await insert("hello", None)

    assert await _stored(app) == (2, 2)


async def test_racing_inserts_with_one_key_store_one_blob(
    api: Api, app: Starlette, insert: Inserter
) -> None:
    results = await asyncio.gather(*(insert(f"try {n}", "racing") for n in range(10)))

    assert {r["__typename"] for r in results} == {"InsertBlobPayload"}
    assert len({r["blob"]["id"] for r in results}) == 1
    assert sorted(r["replayed"] for r in results) == [False] + [True] * 9
    assert await _stored(app) == (1, 1)


async def test_deleting_the_blob_frees_its_key(api: Api, app: Starlette, insert: Inserter) -> None:
    first = await insert("hello", "k")
    await api.ok(DELETE, id=first["blob"]["id"])

    again = await insert("hello", "k")

    assert again["replayed"] is False
    assert again["blob"]["id"] != first["blob"]["id"]
    assert await _stored(app) == (1, 1)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        pytest.param("", "1-128 characters", id="empty"),
        pytest.param("k" * 129, "1-128 characters", id="too-long"),
        pytest.param("a\x00b", "NUL", id="nul"),
        pytest.param("a\ud800b", "surrogate", id="lone-surrogate"),
    ],
)
async def test_unusable_keys_are_invalid_input(
    api: Api, app: Starlette, insert: Inserter, key: str, problem: str
) -> None:
    result = await insert("hello", key)

    assert result["__typename"] == "InvalidInput"
    assert result["field"] == "idempotencyKey"
    assert problem in result["message"]
    assert await _stored(app) == (0, 0)


async def test_the_longest_key_is_accepted(api: Api, insert: Inserter) -> None:
    first = await insert("hello", "k" * 128)
    retry = await insert("hello", "k" * 128)

    assert retry["blob"]["id"] == first["blob"]["id"]
