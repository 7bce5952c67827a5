"""Users: creation, validation, updates, deletion and the cascade of a user's data."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel, col
from starlette.applications import Starlette

from powermemo_gql.blobs.models import Blob
from powermemo_gql.buffers.models import BufferItem
from powermemo_gql.events.models import Event
from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.resources import Resources
from powermemo_gql.users.models import User
from tests.conftest import FAKE_NOW
from tests.support import Api, ProjectHandle, raw_uuid

CREATE_USER = """
mutation($input: CreateUserInput!) {
  createUser(input: $input) {
    __typename
    ... on CreateUserPayload { user { userId data createdAt updatedAt } }
    ... on UserAlreadyExists { code message id }
    ... on InvalidInput { code message field }
  }
}
"""
UPDATE_USER = """
mutation($input: UpdateUserInput!) {
  updateUser(input: $input) {
    __typename
    ... on UpdateUserPayload { user { userId data createdAt updatedAt } }
    ... on NotFound { code message id }
    ... on InvalidInput { code message field }
  }
}
"""
DELETE_USER = """
mutation($id: ID!) {
  deleteUser(input: {userId: $id}) {
    __typename
    ... on DeleteUserPayload { deletedUserId }
    ... on NotFound { code message id }
  }
}
"""
GET_USER = """
query($id: ID!) {
  user(userId: $id) { userId data createdAt updatedAt }
}
"""
LIST_USER_IDS = """
{ users(first: 100) { nodes { userId } } }
"""
INSERT_BLOB = """
mutation($input: InsertBlobInput!) {
  insertBlob(input: $input) {
    __typename
    ... on InsertBlobPayload { blob { id type } }
  }
}
"""
GET_BLOB = """
query($id: ID!) {
  blob(id: $id) { id }
}
"""

MAX_DATA_BYTES = 64 * 1024
# Size of {"pad":""} once serialized compactly, the way the server measures it.
PADDING_OVERHEAD = len('{"pad":""}')


async def create_user(api: Api, user_id: str | None = None, data: Any = None) -> dict[str, Any]:
    """The createUser result (a payload or an error member)."""
    user_input: dict[str, Any] = {}
    if user_id is not None:
        user_input["userId"] = user_id
    if data is not None:
        user_input["data"] = data
    result = await api.ok(CREATE_USER, input=user_input)
    created: dict[str, Any] = result["createUser"]
    return created


async def created_user(api: Api, user_id: str | None = None, data: Any = None) -> dict[str, Any]:
    """A user that must have been created."""
    created = await create_user(api, user_id, data)
    assert created["__typename"] == "CreateUserPayload", created
    user: dict[str, Any] = created["user"]
    return user


async def user_ids(api: Api) -> list[str]:
    result = await api.ok(LIST_USER_IDS)
    return [node["userId"] for node in result["users"]["nodes"]]


async def get_user(api: Api, user_id: str) -> dict[str, Any] | None:
    result = await api.ok(GET_USER, id=user_id)
    user: dict[str, Any] | None = result["user"]
    return user


# Creation


async def test_create_user_keeps_the_given_id_and_data(project: ProjectHandle) -> None:
    user = await created_user(project.api, "alice", {"plan": "pro"})

    assert user["userId"] == "alice"
    assert user["data"] == {"plan": "pro"}
    assert await get_user(project.api, "alice") == user


async def test_create_user_without_id_generates_a_uuid(project: ProjectHandle) -> None:
    first = await created_user(project.api)
    second = await created_user(project.api)

    assert str(uuid.UUID(first["userId"])) == first["userId"]
    assert first["userId"] != second["userId"]
    fetched = await get_user(project.api, first["userId"])
    assert fetched is not None
    assert fetched["userId"] == first["userId"]


async def test_create_user_without_data_stores_an_empty_object(project: ProjectHandle) -> None:
    user = await created_user(project.api, "bob")

    assert user["data"] == {}


async def test_user_data_round_trips_as_json(project: ProjectHandle) -> None:
    data = {
        "name": "Zoë 张",
        "age": 41,
        "score": 2.5,
        "active": True,
        "nickname": None,
        "tags": ["a", "b", 3],
        "address": {"city": "Lyon", "geo": {"lat": 45.76, "lon": 4.83}},
        "empty": {},
    }
    await created_user(project.api, "carol", data)

    fetched = await get_user(project.api, "carol")
    assert fetched is not None
    assert fetched["data"] == data


async def test_create_user_returns_timezone_aware_timestamps(project: ProjectHandle) -> None:
    user = await created_user(project.api, "dave")

    created_at = datetime.fromisoformat(user["createdAt"])
    updated_at = datetime.fromisoformat(user["updatedAt"])
    assert created_at.utcoffset() is not None
    assert updated_at >= created_at


async def test_duplicate_id_in_same_project_is_user_already_exists(
    project: ProjectHandle,
) -> None:
    await created_user(project.api, "alice", {"v": 1})

    duplicate = await create_user(project.api, "alice", {"v": 2})

    assert duplicate["__typename"] == "UserAlreadyExists"
    assert duplicate["code"] == "ALREADY_EXISTS"
    assert duplicate["id"] == "alice"
    assert "alice" in duplicate["message"]
    kept = await get_user(project.api, "alice")
    assert kept is not None
    assert kept["data"] == {"v": 1}
    assert await user_ids(project.api) == ["alice"]


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="space"),
        pytest.param("two words", id="inner-space"),
        pytest.param(" alice", id="leading-space"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("a" * 200, id="200-chars"),
        pytest.param("-alice", id="leading-dash"),
        pytest.param(".alice", id="leading-dot"),
        pytest.param("a/b", id="slash"),
        pytest.param("zoë", id="non-ascii"),
        pytest.param("alice\n", id="trailing-newline"),
    ],
)
async def test_invalid_user_id_is_invalid_input(project: ProjectHandle, bad_id: str) -> None:
    result = await create_user(project.api, bad_id)

    assert result["__typename"] == "InvalidInput"
    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == "id"
    assert await user_ids(project.api) == []


@pytest.mark.parametrize(
    "good_id",
    [
        pytest.param("a", id="one-char"),
        pytest.param("a" * 128, id="128-chars"),
        pytest.param("7", id="digit"),
        pytest.param("user.name_1:team@example.com-x", id="punctuation"),
    ],
)
async def test_valid_user_id_is_accepted(project: ProjectHandle, good_id: str) -> None:
    user = await created_user(project.api, good_id)

    assert user["userId"] == good_id
    assert await user_ids(project.api) == [good_id]


@pytest.mark.parametrize(
    "not_an_object",
    [
        pytest.param([1, 2, 3], id="list"),
        pytest.param("text", id="string"),
        pytest.param(42, id="number"),
        pytest.param(True, id="boolean"),
    ],
)
async def test_create_user_with_data_that_is_not_an_object_is_invalid_input(
    project: ProjectHandle, not_an_object: Any
) -> None:
    result = await create_user(project.api, "alice", not_an_object)

    assert result["__typename"] == "InvalidInput"
    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == "data"
    assert await user_ids(project.api) == []


async def test_create_user_with_oversized_data_is_invalid_input(project: ProjectHandle) -> None:
    data = {"pad": "x" * (MAX_DATA_BYTES - PADDING_OVERHEAD + 1)}

    result = await create_user(project.api, "alice", data)

    assert result["__typename"] == "InvalidInput"
    assert result["field"] == "data"
    assert str(MAX_DATA_BYTES) in result["message"]
    assert await user_ids(project.api) == []


async def test_create_user_with_data_at_the_size_limit_is_accepted(
    project: ProjectHandle,
) -> None:
    data = {"pad": "x" * (MAX_DATA_BYTES - PADDING_OVERHEAD)}

    user = await created_user(project.api, "alice", data)

    assert len(user["data"]["pad"]) == MAX_DATA_BYTES - PADDING_OVERHEAD


# Reading


async def test_user_query_of_missing_user_is_null(project: ProjectHandle) -> None:
    await created_user(project.api, "alice")

    assert await get_user(project.api, "nobody") is None
    assert await get_user(project.api, "ALICE") is None


async def test_user_query_of_an_invalid_id_is_null(project: ProjectHandle) -> None:
    assert await get_user(project.api, "x" * 200) is None
    assert await get_user(project.api, "") is None


# Updating


async def test_update_user_replaces_data_and_bumps_updated_at(project: ProjectHandle) -> None:
    before = await created_user(project.api, "alice", {"a": 1, "b": {"c": 2}})
    await asyncio.sleep(0.01)

    result = await project.api.ok(UPDATE_USER, input={"userId": "alice", "data": {"z": [1]}})

    updated = result["updateUser"]
    assert updated["__typename"] == "UpdateUserPayload"
    user = updated["user"]
    assert user["data"] == {"z": [1]}  # replaced, not merged
    assert user["createdAt"] == before["createdAt"]
    assert datetime.fromisoformat(user["updatedAt"]) > datetime.fromisoformat(before["updatedAt"])
    assert await get_user(project.api, "alice") == user


@pytest.mark.fake_clock
async def test_create_user_stamps_created_and_updated_at_with_the_apps_clock(
    project: ProjectHandle,
) -> None:
    user = await created_user(project.api, "alice")

    assert datetime.fromisoformat(user["createdAt"]) == FAKE_NOW
    assert datetime.fromisoformat(user["updatedAt"]) == FAKE_NOW
    stored = await get_user(project.api, "alice")
    assert stored is not None
    assert datetime.fromisoformat(stored["createdAt"]) == FAKE_NOW
    assert datetime.fromisoformat(stored["updatedAt"]) == FAKE_NOW


@pytest.mark.fake_clock
async def test_update_user_stamps_updated_at_with_the_apps_clock(project: ProjectHandle) -> None:
    await created_user(project.api, "alice")

    result = await project.api.ok(UPDATE_USER, input={"userId": "alice", "data": {"z": [1]}})

    assert datetime.fromisoformat(result["updateUser"]["user"]["updatedAt"]) == FAKE_NOW
    stored = await get_user(project.api, "alice")
    assert stored is not None
    assert datetime.fromisoformat(stored["updatedAt"]) == FAKE_NOW


async def test_update_user_with_non_object_data_is_invalid_input(project: ProjectHandle) -> None:
    before = await created_user(project.api, "alice", {"a": 1})

    result = await project.api.ok(UPDATE_USER, input={"userId": "alice", "data": ["a"]})

    assert result["updateUser"]["__typename"] == "InvalidInput"
    assert result["updateUser"]["field"] == "data"
    assert await get_user(project.api, "alice") == before


async def test_update_user_with_oversized_data_is_invalid_input(project: ProjectHandle) -> None:
    before = await created_user(project.api, "alice", {"a": 1})
    data = {"pad": "x" * (MAX_DATA_BYTES - PADDING_OVERHEAD + 1)}

    result = await project.api.ok(UPDATE_USER, input={"userId": "alice", "data": data})

    assert result["updateUser"]["__typename"] == "InvalidInput"
    assert result["updateUser"]["field"] == "data"
    assert await get_user(project.api, "alice") == before


async def test_update_missing_user_is_user_not_found(project: ProjectHandle) -> None:
    result = await project.api.ok(UPDATE_USER, input={"userId": "ghost", "data": {"a": 1}})

    assert result["updateUser"]["__typename"] == "NotFound"
    assert result["updateUser"]["code"] == "NOT_FOUND"
    assert result["updateUser"]["id"] == "ghost"
    assert await user_ids(project.api) == []


# Deleting


async def test_delete_user_removes_it(project: ProjectHandle) -> None:
    await created_user(project.api, "alice")
    await created_user(project.api, "bob")

    result = await project.api.ok(DELETE_USER, id="alice")

    assert result["deleteUser"] == {"__typename": "DeleteUserPayload", "deletedUserId": "alice"}
    assert await get_user(project.api, "alice") is None
    assert await user_ids(project.api) == ["bob"]


async def test_delete_missing_user_is_user_not_found(project: ProjectHandle) -> None:
    result = await project.api.ok(DELETE_USER, id="ghost")

    assert result["deleteUser"]["__typename"] == "NotFound"
    assert result["deleteUser"]["code"] == "NOT_FOUND"
    assert result["deleteUser"]["id"] == "ghost"


async def test_delete_user_twice_is_user_not_found_the_second_time(
    project: ProjectHandle,
) -> None:
    await created_user(project.api, "alice")
    await project.api.ok(DELETE_USER, id="alice")

    again = await project.api.ok(DELETE_USER, id="alice")

    assert again["deleteUser"]["__typename"] == "NotFound"


async def test_deleted_user_id_can_be_created_again_with_fresh_data(
    project: ProjectHandle,
) -> None:
    await created_user(project.api, "alice", {"old": True})
    await project.api.ok(DELETE_USER, id="alice")

    reborn = await created_user(project.api, "alice")

    assert reborn["data"] == {}


async def insert_blobs(api: Api, user_id: str) -> list[str]:
    """A chat (which joins the buffer) and an image (which does not); their ids."""
    blobs = [
        {"chat": {"messages": [{"role": "USER", "content": f"hello from {user_id}"}]}},
        {"image": {"url": "https://example.com/cat.png", "caption": "a cat"}},
    ]
    ids = []
    for blob in blobs:
        result = await api.ok(INSERT_BLOB, input={"userId": user_id, "blob": blob})
        inserted = result["insertBlob"]
        assert inserted["__typename"] == "InsertBlobPayload", inserted
        ids.append(inserted["blob"]["id"])
    return ids


def resources_of(app: Starlette) -> Resources:
    resources: Resources = app.state.resources
    return resources


async def row_id_of(app: Starlette, project: ProjectHandle, external_id: str) -> uuid.UUID:
    async with resources_of(app).sessions() as session:
        row_id = await session.scalar(
            select(col(User.id)).where(
                col(User.project_id) == raw_uuid(project.id),
                col(User.external_id) == external_id,
            )
        )
    assert row_id is not None
    return row_id


async def add_memory(app: Starlette, project: ProjectHandle, user_row_id: uuid.UUID) -> None:
    """An event and a profile entry derived from it, as the memory pipeline would write."""
    project_id = raw_uuid(project.id)
    async with resources_of(app).sessions() as session:
        event = Event(project_id=project_id, user_id=user_row_id, summary="Talked about cats")
        session.add(event)
        await session.flush()
        session.add(
            ProfileEntry(
                project_id=project_id,
                user_id=user_row_id,
                topic="interests",
                sub_topic="pets",
                content="likes cats",
                source_event_id=event.id,
            )
        )
        await session.commit()


async def rows_of(app: Starlette, user_row_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each user-owned table belong to the user."""
    owned_by_user: dict[str, tuple[type[SQLModel], Any]] = {
        "users": (User, col(User.id)),
        "blobs": (Blob, col(Blob.user_id)),
        "buffer_items": (BufferItem, col(BufferItem.user_id)),
        "events": (Event, col(Event.user_id)),
        "profile_entries": (ProfileEntry, col(ProfileEntry.user_id)),
    }
    counts: dict[str, int] = {}
    async with resources_of(app).sessions() as session:
        for name, (model, user_column) in owned_by_user.items():
            statement = select(func.count()).select_from(model).where(user_column == user_row_id)
            counts[name] = (await session.execute(statement)).scalar_one()
    return counts


async def test_delete_user_cascades_to_everything_of_that_user_only(
    app: Starlette, project: ProjectHandle
) -> None:
    await created_user(project.api, "alice")
    await created_user(project.api, "bob")
    alice_blobs = await insert_blobs(project.api, "alice")
    await insert_blobs(project.api, "bob")
    alice = await row_id_of(app, project, "alice")
    bob = await row_id_of(app, project, "bob")
    await add_memory(app, project, alice)
    await add_memory(app, project, bob)
    everything = {"users": 1, "blobs": 2, "buffer_items": 1, "events": 1, "profile_entries": 1}
    assert await rows_of(app, alice) == everything

    result = await project.api.ok(DELETE_USER, id="alice")

    assert result["deleteUser"]["__typename"] == "DeleteUserPayload"
    assert await rows_of(app, alice) == dict.fromkeys(everything, 0)
    assert await rows_of(app, bob) == everything
    for blob_id in alice_blobs:
        assert (await project.api.ok(GET_BLOB, id=blob_id))["blob"] is None


@pytest.mark.parametrize("data", [{"bio": "a\x00b"}, {"k\x00": 1}, {"nested": [{"x": "\x00"}]}])
async def test_data_with_nul_characters_is_invalid_input_on_every_database(
    project: ProjectHandle, data: dict[str, Any]
) -> None:
    # PostgreSQL cannot store NUL in JSON; refusing it keeps both databases alike.
    result = await create_user(project.api, "nul", data)
    assert result["__typename"] == "InvalidInput"
    assert result["field"] == "data"
    assert await get_user(project.api, "nul") is None


async def test_ids_no_user_can_have_are_not_found_on_every_database(
    project: ProjectHandle,
) -> None:
    assert await get_user(project.api, "a\x00b") is None
    flushed = await project.api.ok(
        "mutation($id: ID!) { flushBuffer(input: {userId: $id}) { __typename } }", id="x\x00"
    )
    assert flushed["flushBuffer"]["__typename"] == "NotFound"
