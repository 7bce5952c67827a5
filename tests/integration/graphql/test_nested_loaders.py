"""Every nested list is batched: listing more users (or projects) costs no more statements,
and each nested list still holds exactly its parent's rows, in order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.buffers.models import Flush
from powermemo_gql.core.types import utcnow
from powermemo_gql.events.models import Event
from powermemo_gql.users.models import User
from tests.integration.blobs.test_dataloaders import recorded_statements, resources_of, touching
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

NESTED = """
{
  users(first: 10) {
    nodes {
      id: userId
      profile { content history { content } }
      events(first: 2) { nodes { summary } pageInfo { hasNextPage } }
      changes(first: 3) { nodes { kind newValue } pageInfo { hasNextPage } }
      buffer { items { status } }
      flushes(last: 2) { error }
    }
  }
}
"""
PROJECTS = "{ projects { nodes { name apiKeys { name } } } }"
ADD_ENTRY = """
mutation($input: AddProfileEntryInput!) {
  addProfileEntry(input: $input) { ... on AddProfileEntryPayload { entry { id } } }
}
"""
UPDATE_ENTRY = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""
INSERT_CHAT = """
mutation($user: ID!, $text: String!) {
  insertBlob(input: {userId: $user, blob: {chat: {messages: [{role: USER, content: $text}]}}}) {
    __typename
  }
}
"""


async def add_user(app: Starlette, api: Api, name: str) -> None:
    """A user with two entries (one edited), three events, one buffered chat, three flushes:
    everything told apart by the user's name."""
    await api.ok("mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }", id=name)
    for n in range(2):
        added = await api.ok(
            ADD_ENTRY,
            input={"userId": name, "topic": "t", "subTopic": f"s{n}", "content": f"{name}-{n}"},
        )
        if n == 0:
            entry_id = added["addProfileEntry"]["entry"]["id"]
            await api.ok(UPDATE_ENTRY, id=entry_id, content=f"{name}-0-edited")
    await api.ok(INSERT_CHAT, user=name, text=f"hello from {name}")
    start = utcnow() - timedelta(days=1)
    async with resources_of(app).sessions() as session, session.begin():
        user = (await session.scalars(select(User).where(col(User.external_id) == name))).one()
        for n in range(3):
            at = start + timedelta(hours=n)
            session.add(
                Event(
                    project_id=user.project_id,
                    user_id=user.id,
                    summary=f"{name}-event-{n}",
                    happened_from=at,
                    happened_to=at,
                )
            )
            session.add(
                Flush(
                    project_id=user.project_id,
                    user_id=user.id,
                    trigger="manual",
                    status="failed",
                    error=f"{name}-{n}",
                    started_at=at,
                )
            )


def check_user(node: dict[str, Any]) -> None:
    name = node["id"]
    assert node["profile"] == [
        {"content": f"{name}-0-edited", "history": [{"content": f"{name}-0"}]},
        {"content": f"{name}-1", "history": []},
    ]
    assert node["events"] == {
        "nodes": [{"summary": f"{name}-event-2"}, {"summary": f"{name}-event-1"}],
        "pageInfo": {"hasNextPage": True},
    }
    assert [c["newValue"] for c in node["changes"]["nodes"]] == [
        f"{name}-0",
        f"{name}-0-edited",
        f"{name}-1",
    ]
    assert node["buffer"] == {"items": [{"status": "IDLE"}]}
    assert node["flushes"] == [{"error": f"{name}-2"}, {"error": f"{name}-1"}]


async def test_nested_lists_of_users_cost_the_same_statements_for_two_users_or_five(
    app: Starlette, project: ProjectHandle
) -> None:
    api = project.api
    for name in ("u0", "u1"):
        await add_user(app, api, name)
    await api.ok(NESTED)  # warm up: connections, the key cache
    with recorded_statements(app) as with_two:
        await api.ok(NESTED)
    for name in ("u2", "u3", "u4"):
        await add_user(app, api, name)
    with recorded_statements(app) as with_five:
        result = await api.ok(NESTED)

    assert len(with_five) == len(with_two)
    for table in ("profile_revisions", "events", "changes", "buffer_items", "flushes"):
        assert len(touching(with_five, table)) == 1, table
    nodes = result["users"]["nodes"]
    assert [n["id"] for n in nodes] == ["u0", "u1", "u2", "u3", "u4"]
    for node in nodes:
        check_user(node)


async def test_api_keys_of_many_projects_take_one_statement(app: Starlette) -> None:
    root = Api(app, ROOT_TOKEN)
    for name in ("p0", "p1", "p2"):
        project = await create_project(app, root, name)  # with a key named "tests"
        await root.ok(
            "mutation($p: ID!, $n: String!) { createApiKey(input: {projectId: $p, name: $n}) "
            "{ __typename } }",
            p=project.id,
            n=f"{name}-b",
        )
    with recorded_statements(app) as statements:
        result = await root.ok(PROJECTS)
    assert len(touching(statements, "api_keys")) == 1
    by_name = {p["name"]: [k["name"] for k in p["apiKeys"]] for p in result["projects"]["nodes"]}
    for name in ("p0", "p1", "p2"):
        assert by_name[name] == ["tests", f"{name}-b"]
