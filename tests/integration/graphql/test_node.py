"""node(id) and nodes(ids): every Node type by its global id, within the caller's project."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from starlette.applications import Starlette

from powermemo_gql.buffers.models import Flush
from powermemo_gql.events.models import Event
from powermemo_gql.users.models import User
from tests.integration.blobs.test_dataloaders import recorded_statements, resources_of, touching
from tests.support import Api, ProjectHandle, create_project

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on User { userId }
    ... on Blob { type }
    ... on ProfileEntry { content }
    ... on Event { summary }
    ... on Flush { trigger }
    ... on Project { name }
    ... on ApiKey { name }
  }
}
"""
NODES = """
query($ids: [ID!]!) {
  nodes(ids: $ids) { __typename id ... on ProfileEntry { subTopic } ... on User { userId } }
}
"""
SETUP = """
mutation($user: ID!, $blob: BlobInput!) {
  createUser(input: {userId: $user}) { ... on CreateUserPayload { user { id userId } } }
  insertBlob(input: {userId: $user, blob: $blob}) { ... on InsertBlobPayload { blob { id } } }
}
"""
ADD_ENTRY = """
mutation($user: ID!, $sub: String!) {
  addProfileEntry(input: {userId: $user, topic: "t", subTopic: $sub, content: "c"}) {
    ... on AddProfileEntryPayload { entry { id } }
  }
}
"""
MEMORY = """
query($user: ID!) {
  user(userId: $user) {
    events { nodes { id } }
    flushes { id eventId }
    profile { id sourceEventId }
  }
}
"""
KEYS = """
query($id: ID!) { project(id: $id) { id apiKeys { id } } }
"""
DELETE_ENTRY = """
mutation($id: ID!) {
  deleteProfileEntry(input: {id: $id}) {
    __typename
    ... on DeleteProfileEntryPayload { deletedEntryId }
    ... on NotFound { code id }
  }
}
"""
UPDATE_ENTRY = """
mutation($id: ID!) {
  updateProfileEntry(input: {id: $id, content: "new"}) {
    __typename
    ... on UpdateProfileEntryPayload { entry { id } }
    ... on NotFound { id }
    ... on InvalidInput { field }
  }
}
"""
DELETE_BLOB = """
mutation($id: ID!) { deleteBlob(input: {id: $id}) { __typename } }
"""
GET_BLOB = "query($id: ID!) { blob(id: $id) { id } }"
CHAT = {"chat": {"messages": [{"role": "USER", "content": "hi"}]}}


def encoded(type_name: str, raw: str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


def raw(node_id: str) -> str:
    return base64.b64decode(node_id).decode().split(":", 1)[1]


async def add_event_and_flush(app: Starlette, user_node_id: str) -> None:
    """An event and the flush that wrote it, as the write path stores them."""
    async with resources_of(app).sessions() as session, session.begin():
        user = await session.get_one(User, uuid.UUID(raw(user_node_id)))
        event = Event(project_id=user.project_id, user_id=user.id, summary="went hiking")
        session.add(event)
        await session.flush()
        session.add(
            Flush(project_id=user.project_id, user_id=user.id, trigger="manual", event_id=event.id)
        )


async def setup(app: Starlette, api: Api, user_id: str = "alice") -> dict[str, Any]:
    """A user with a blob, an entry, an event and a flush; their global ids by type."""
    made = await api.ok(SETUP, user=user_id, blob=CHAT)
    entry = await api.ok(ADD_ENTRY, user=user_id, sub="s")
    await add_event_and_flush(app, made["createUser"]["user"]["id"])
    memory = (await api.ok(MEMORY, user=user_id))["user"]
    return {
        "User": made["createUser"]["user"]["id"],
        "ChatBlob": made["insertBlob"]["blob"]["id"],
        "ProfileEntry": entry["addProfileEntry"]["entry"]["id"],
        "Event": memory["events"]["nodes"][0]["id"],
        "Flush": memory["flushes"][0]["id"],
    }


async def test_node_fetches_every_type_by_its_global_id(
    app: Starlette, root: Api, project: ProjectHandle
) -> None:
    ids = await setup(app, project.api)
    memory = (await project.api.ok(MEMORY, user="alice"))["user"]
    assert memory["flushes"][0]["eventId"] == ids["Event"]  # references are global ids too
    for type_name, node_id in ids.items():
        found = (await project.api.ok(NODE, id=node_id))["node"]
        assert found["__typename"] == type_name
        assert found["id"] == node_id
    user = (await project.api.ok(NODE, id=ids["User"]))["node"]
    assert user["userId"] == "alice"
    assert base64.b64decode(ids["User"]).decode().startswith("User:")
    assert base64.b64decode(ids["ChatBlob"]).decode().startswith("Blob:")

    keys = (await root.ok(KEYS, id=project.id))["project"]
    for type_name, node_id in (("Project", project.id), ("ApiKey", keys["apiKeys"][0]["id"])):
        found = (await root.ok(NODE, id=node_id))["node"]
        assert (found["__typename"], found["id"]) == (type_name, node_id)


async def test_another_projects_objects_are_null(
    app: Starlette, root: Api, project: ProjectHandle
) -> None:
    ids = await setup(app, project.api)
    other = await create_project(app, root, "other")
    await setup(app, other.api)  # the same user id there: still not this user
    result = await other.api.ok(NODES, ids=list(ids.values()))
    assert result["nodes"] == [None] * len(ids)
    # Projects and keys are root's; the project's data is not root's to read this way.
    assert (await project.api.ok(NODE, id=project.id))["node"] is None
    assert (await root.ok(NODE, id=ids["User"]))["node"] is None


async def test_nodes_keep_the_order_asked_with_nulls(
    app: Starlette, project: ProjectHandle
) -> None:
    ids = await setup(app, project.api)
    second = (await project.api.ok(ADD_ENTRY, user="alice", sub="s2"))["addProfileEntry"]
    second_id = second["entry"]["id"]
    missing = encoded("ProfileEntry", "00000000-0000-0000-0000-000000000000")
    asked = [second_id, missing, ids["ProfileEntry"], encoded("Nothing", "1"), ids["User"]]
    result = (await project.api.ok(NODES, ids=asked))["nodes"]
    assert [n and n["id"] for n in result] == [
        second_id,
        None,
        ids["ProfileEntry"],
        None,
        ids["User"],
    ]
    assert result[0]["subTopic"] == "s2"
    assert result[-1]["userId"] == "alice"
    assert (await project.api.ok(NODES, ids=[]))["nodes"] == []


async def test_nodes_take_at_most_100_ids(project: ProjectHandle) -> None:
    ids = [encoded("User", "00000000-0000-0000-0000-000000000000")] * 101
    response = await project.api.run(NODES, ids=ids)
    assert response.data is None
    assert response.error_codes() == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "ids"
    assert (await project.api.ok(NODES, ids=ids[:100]))["nodes"] == [None] * 100


async def test_a_malformed_id_is_refused_naming_the_argument(
    app: Starlette, project: ProjectHandle
) -> None:
    ids = await setup(app, project.api)
    for document, variables, field in (
        (NODE, {"id": "not an id"}, "id"),
        (NODE, {"id": base64.b64encode(b"no colon").decode()}, "id"),
        (NODES, {"ids": [ids["User"], "garbage"]}, "ids[1]"),
        (GET_BLOB, {"id": "garbage"}, "id"),
        (DELETE_BLOB, {"id": "garbage"}, "input.id"),
        (DELETE_ENTRY, {"id": "garbage"}, "input.id"),
    ):
        response = await project.api.run(document, **variables)
        assert response.error_codes() == ["BAD_USER_INPUT"], (document, response.errors)
        assert response.errors[0]["extensions"]["field"] == field
    updated = await project.api.ok(UPDATE_ENTRY, id="garbage")
    assert updated["updateProfileEntry"] == {"__typename": "InvalidInput", "field": "input.id"}


async def test_an_id_of_another_type_is_not_found(app: Starlette, project: ProjectHandle) -> None:
    ids = await setup(app, project.api)
    assert (await project.api.ok(GET_BLOB, id=ids["ProfileEntry"]))["blob"] is None
    # The raw id is a real entry's, but the id says Blob: not found, naming the id as given.
    as_blob = encoded("Blob", raw(ids["ProfileEntry"]))
    deleted = (await project.api.ok(DELETE_ENTRY, id=as_blob))["deleteProfileEntry"]
    assert deleted == {"__typename": "NotFound", "code": "NOT_FOUND", "id": as_blob}
    updated = (await project.api.ok(UPDATE_ENTRY, id=ids["Event"]))["updateProfileEntry"]
    assert updated == {"__typename": "NotFound", "id": ids["Event"]}
    deleted = (await project.api.ok(DELETE_ENTRY, id=ids["ProfileEntry"]))["deleteProfileEntry"]
    assert deleted["deletedEntryId"] == ids["ProfileEntry"]


async def test_nodes_of_ten_entries_take_one_statement_per_type(
    app: Starlette, project: ProjectHandle
) -> None:
    ids = await setup(app, project.api)
    entries = [ids["ProfileEntry"]]
    for i in range(9):
        added = await project.api.ok(ADD_ENTRY, user="alice", sub=f"more{i}")
        entries.append(added["addProfileEntry"]["entry"]["id"])
    await project.api.ok(NODES, ids=entries)  # warm up: connections, caches

    with recorded_statements(app) as statements:
        result = await project.api.ok(NODES, ids=entries)
    assert [n["id"] for n in result["nodes"]] == entries
    assert len(statements) == 1, statements

    with recorded_statements(app) as statements:
        result = await project.api.ok(NODES, ids=[*entries, ids["User"], ids["Event"]])
    assert len(statements) == 3, statements
    assert len(touching(statements, "profile_entries")) == 1
