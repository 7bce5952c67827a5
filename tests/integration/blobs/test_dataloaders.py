"""DataLoaders: nested blobs and blob owners cost a fixed number of queries, however many rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from starlette.applications import Starlette

from powermemo_gql.resources import Resources
from tests.support import Api, ProjectHandle

USERS_WITH_BLOBS = """
{ users(first: 10) {
  nodes { id: userId blobs(first: 2) { nodes { id } pageInfo { hasNextPage } } } } }
"""
USERS_WITH_BLOB_OWNERS = """
{ users(first: 10) { nodes { id: userId blobs(first: 5) { nodes { id user { id: userId } } } } } }
"""
USER_WITH_BLOB_OWNERS = """
query($id: ID!) { user(userId: $id) { blobs(first: 50) { nodes { id user { id: userId } } } } }
"""
USERS_WITH_TWO_BLOB_LISTS = """
{
  users(first: 10) {
    nodes {
      id: userId
      chats: blobs(type: CHAT, first: 1) { nodes { id type } pageInfo { hasNextPage } }
      recent: blobs(first: 3) { nodes { id type } pageInfo { hasNextPage } }
    }
  }
}
"""
CREATE_USER = """
mutation($id: ID!) {
  createUser(input: {userId: $id}) { __typename }
}
"""
INSERT_BLOB = """
mutation($input: InsertBlobInput!) {
  insertBlob(input: $input) {
    __typename
    ... on InsertBlobPayload { blob { id } }
  }
}
"""

# One of each kind that has a payload of its own, so the interface resolves several types.
BLOBS = [
    {"chat": {"messages": [{"role": "USER", "content": "hello"}]}},
    {"document": {"title": "Notes", "content": "Buy milk"}},
    {"code": {"language": "python", "content": "x = 1"}},
]


def resources_of(app: Starlette) -> Resources:
    resources: Resources = app.state.resources
    return resources


@contextmanager
def recorded_statements(app: Starlette) -> Iterator[list[str]]:
    """The SQL statements the app executes inside the block."""
    engine = resources_of(app).engine.sync_engine
    statements: list[str] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        # Background loops (the key cache's recheck) may run during the block: not the request's.
        if context is None or not context.execution_options.get("background"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
        assert not event.contains(engine, "before_cursor_execute", record)


async def statements_of(app: Starlette, api: Api, document: str, **variables: Any) -> list[str]:
    """The statements one request executes, and checks that it succeeded."""
    with recorded_statements(app) as statements:
        await api.ok(document, **variables)
    return statements


def touching(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if f"FROM {table}" in s or f"JOIN {table}" in s]


async def add_user(api: Api, user_id: str, blob_count: int) -> list[str]:
    """A user with blob_count blobs (cycling through BLOBS); their ids, oldest first."""
    created = await api.ok(CREATE_USER, id=user_id)
    assert created["createUser"]["__typename"] == "CreateUserPayload"
    ids = []
    for i in range(blob_count):
        result = await api.ok(INSERT_BLOB, input={"userId": user_id, "blob": BLOBS[i % len(BLOBS)]})
        assert result["insertBlob"]["__typename"] == "InsertBlobPayload"
        ids.append(result["insertBlob"]["blob"]["id"])
    return ids


async def add_users(api: Api, user_ids: list[str], blob_count: int) -> dict[str, list[str]]:
    return {user_id: await add_user(api, user_id, blob_count) for user_id in user_ids}


async def test_nested_blob_pages_take_one_query_whatever_the_number_of_users(
    app: Starlette, project: ProjectHandle
) -> None:
    api = project.api
    blob_ids = await add_users(api, ["u0", "u1"], 3)
    await api.ok(USERS_WITH_BLOBS)  # warm up: connections, caches
    with_two = await statements_of(app, api, USERS_WITH_BLOBS)

    blob_ids |= await add_users(api, ["u2", "u3", "u4", "u5"], 3)
    with recorded_statements(app) as with_six:
        result = await api.ok(USERS_WITH_BLOBS)

    assert len(with_six) == len(with_two)
    assert len(with_six) <= 4  # the API key, the users, their blobs (and a spare)
    assert len(touching(with_six, "users")) == 1
    assert len(touching(with_six, "blobs")) == 1
    nodes = result["users"]["nodes"]
    assert [node["id"] for node in nodes] == ["u0", "u1", "u2", "u3", "u4", "u5"]
    for node in nodes:
        assert [blob["id"] for blob in node["blobs"]["nodes"]] == blob_ids[node["id"]][:2]
        assert node["blobs"]["pageInfo"] == {"hasNextPage": True}


async def test_blob_owners_are_loaded_in_one_query_whatever_the_number_of_users(
    app: Starlette, project: ProjectHandle
) -> None:
    api = project.api
    await add_users(api, ["u0", "u1"], 3)
    await api.ok(USERS_WITH_BLOB_OWNERS)
    with_two = await statements_of(app, api, USERS_WITH_BLOB_OWNERS)

    await add_users(api, ["u2", "u3", "u4", "u5"], 3)
    with recorded_statements(app) as with_six:
        result = await api.ok(USERS_WITH_BLOB_OWNERS)

    assert len(with_six) == len(with_two)
    assert len(with_six) <= 5
    assert len(touching(with_six, "blobs")) == 1
    assert len(touching(with_six, "users")) == 2  # the page of users, then the blobs' owners
    for node in result["users"]["nodes"]:
        owners = [blob["user"]["id"] for blob in node["blobs"]["nodes"]]
        assert owners == [node["id"]] * 3


async def test_owner_of_many_blobs_is_loaded_once(app: Starlette, project: ProjectHandle) -> None:
    api = project.api
    await add_user(api, "alice", 2)
    await api.ok(USER_WITH_BLOB_OWNERS, id="alice")
    with_two = await statements_of(app, api, USER_WITH_BLOB_OWNERS, id="alice")

    for blob in BLOBS * 3:
        await api.ok(INSERT_BLOB, input={"userId": "alice", "blob": blob})
    with recorded_statements(app) as with_eleven:
        result = await api.ok(USER_WITH_BLOB_OWNERS, id="alice")

    assert len(with_eleven) == len(with_two)
    assert len(touching(with_eleven, "users")) == 2  # the user by id, then the owner once
    owners = [blob["user"]["id"] for blob in result["user"]["blobs"]["nodes"]]
    assert owners == ["alice"] * 11


async def test_differently_filtered_blob_lists_batch_per_filter(
    app: Starlette, project: ProjectHandle
) -> None:
    api = project.api
    blob_ids = await add_users(api, ["u0", "u1"], 4)
    await api.ok(USERS_WITH_TWO_BLOB_LISTS)
    with_two = await statements_of(app, api, USERS_WITH_TWO_BLOB_LISTS)

    blob_ids |= await add_users(api, ["u2", "u3", "u4", "u5"], 4)
    with recorded_statements(app) as with_six:
        result = await api.ok(USERS_WITH_TWO_BLOB_LISTS)

    assert len(with_six) == len(with_two)
    assert len(touching(with_six, "blobs")) == 2  # one per (type, page size)
    for node in result["users"]["nodes"]:
        ids = blob_ids[node["id"]]
        # Blobs cycle chat, document, code, chat: the chats are the 1st and 4th.
        assert node["chats"]["nodes"] == [{"id": ids[0], "type": "CHAT"}]
        assert node["chats"]["pageInfo"] == {"hasNextPage": True}
        assert [blob["id"] for blob in node["recent"]["nodes"]] == ids[:3]
        assert node["recent"]["pageInfo"] == {"hasNextPage": True}
