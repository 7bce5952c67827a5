"""Concurrent writes to one user queue behind the user's row lock and never deadlock.

PostgreSQL only: SQLite lets one writer in at a time, so nothing there can deadlock.
The writers: edits, deletions, flush commits and failing flushes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.buffers.models import BufferItem, Flush, FlushTrigger
from powermemo_gql.memory.job import FlushOutcome
from powermemo_gql.resources import Resources
from powermemo_gql.settings import Settings
from powermemo_gql.users.repository import UserRepository
from tests.integration.memory.conftest import memory_responder
from tests.llm_server import Reply, ScriptedLLM
from tests.support import Api, GraphQLResponse, ProjectHandle

ROUNDS = 50
ADD = """
mutation($sub: String!, $content: String!) {
  addProfileEntry(input: {userId: "alice", topic: "work", subTopic: $sub, content: $content}) {
    __typename
    ... on AddProfileEntryPayload { entry { id } }
  }
}
"""
ADD_FOR = """
mutation($user: ID!) {
  addProfileEntry(input: {userId: $user, topic: "work", subTopic: "title", content: "x"}) {
    ... on AddProfileEntryPayload { entry { id } }
  }
}
"""
UPDATE = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""
DELETE = "mutation($id: ID!) { deleteProfileEntry(input: {id: $id}) { __typename } }"
INSERT_CHAT = """
mutation($text: String!) {
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [{role: USER, content: $text}]}}}) {
    __typename
  }
}
"""
FLUSH = """
mutation {
  flushBuffer(input: {userId: "alice", wait: true}) {
    __typename
    ... on FlushBufferPayload { outcome flush { status error } }
  }
}
"""
FEED = """
query($after: String) {
  user(userId: "alice") {
    changes(first: 100, after: $after) {
      nodes { cursor kind }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


@pytest.fixture(autouse=True)
def _postgres_only(settings: Settings) -> None:
    if settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite serializes writers: there is no deadlock to avoid")


@pytest.fixture
async def api(project: ProjectHandle) -> Api:
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project.api


async def _add(api: Api, sub: str) -> str:
    data = await api.ok(ADD, sub=sub, content="first")
    assert data["addProfileEntry"]["__typename"] == "AddProfileEntryPayload", data
    entry_id: str = data["addProfileEntry"]["entry"]["id"]
    return entry_id


def _typename(response: GraphQLResponse) -> str:
    """The mutation's result type, or the error codes when the request failed."""
    if response.errors or response.data is None:
        return f"errors {response.error_codes()}"
    (result,) = response.data.values()
    typename: str = result["__typename"]
    return typename


async def _cursors(api: Api) -> list[str]:
    cursors: list[str] = []
    after = None
    while True:
        page = (await api.ok(FEED, after=after))["user"]["changes"]
        cursors += [node["cursor"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return cursors
        after = page["pageInfo"]["endCursor"]


async def test_concurrent_edits_of_one_user_all_succeed(api: Api) -> None:
    first, second = await _add(api, "a"), await _add(api, "b")

    outcomes: list[str] = []
    for n in range(ROUNDS):
        pair = await asyncio.gather(
            api.run(UPDATE, id=first, content=f"a{n}"),
            api.run(UPDATE, id=second, content=f"b{n}"),
        )
        outcomes += [_typename(response) for response in pair]

    assert outcomes == ["UpdateProfileEntryPayload"] * (2 * ROUNDS)
    # Every edit is in the feed once, numbered without gaps or repeats.
    assert len(set(await _cursors(api))) == 2 + 2 * ROUNDS


async def test_concurrent_edit_and_delete_of_one_user_all_succeed(api: Api) -> None:
    outcomes: list[str] = []
    for n in range(ROUNDS):
        edited, deleted = await _add(api, f"edit{n}"), await _add(api, f"delete{n}")
        pair = await asyncio.gather(
            api.run(UPDATE, id=edited, content=f"changed {n}"),
            api.run(DELETE, id=deleted),
        )
        outcomes += [_typename(response) for response in pair]

    assert outcomes == ["UpdateProfileEntryPayload", "DeleteProfileEntryPayload"] * ROUNDS


async def test_edits_racing_the_deletion_of_their_user_end_cleanly(api: Api) -> None:
    edits: list[str] = []
    deletions: list[str] = []
    for n in range(ROUNDS):
        user = f"leaving{n}"
        await api.ok(
            "mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }", id=user
        )
        entry = (await api.ok(ADD_FOR, user=user))["addProfileEntry"]["entry"]["id"]
        edit, deletion = await asyncio.gather(
            api.run(UPDATE, id=entry, content="changed"),
            api.run(
                "mutation($id: ID!) { deleteUser(input: {userId: $id}) { __typename } }", id=user
            ),
        )
        edits.append(_typename(edit))
        deletions.append(_typename(deletion))

    # The edit went first, or found the entry gone with its user: never an error.
    assert set(edits) <= {"UpdateProfileEntryPayload", "NotFound"}, edits
    assert deletions == ["DeleteUserPayload"] * ROUNDS


async def test_edits_racing_a_flush_commit_all_succeed(api: Api, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    entry = await _add(api, "racing")

    edits: list[str] = []
    flushes: list[Any] = []
    for n in range(ROUNDS):
        await api.ok(INSERT_CHAT, text=f"I teach chemistry, lesson {n}.")
        flush = asyncio.ensure_future(api.run(FLUSH))
        count = 0
        # Edit again and again while the flush runs, so that some edit meets its commit.
        while not flush.done() or count == 0:
            edits.append(_typename(await api.run(UPDATE, id=entry, content=f"{n}.{count}")))
            count += 1
        flushes.append((await flush).data)

    assert set(edits) == {"UpdateProfileEntryPayload"}
    assert all(f["flushBuffer"]["flush"]["status"] == "DONE" for f in flushes), flushes


def _failing(request: dict[str, Any]) -> Reply:
    return Reply(status=500, content="the model is down")


async def test_edits_racing_failing_flushes_all_succeed(api: Api, llm: ScriptedLLM) -> None:
    llm.responder = _failing
    entry = await _add(api, "racing")

    edits: list[str] = []
    flushes: list[Any] = []
    for n in range(ROUNDS):
        await api.ok(INSERT_CHAT, text=f"I teach chemistry, lesson {n}.")
        flush = asyncio.ensure_future(api.run(FLUSH))
        count = 0
        while not flush.done() or count == 0:
            edits.append(_typename(await api.run(UPDATE, id=entry, content=f"{n}.{count}")))
            count += 1
        flushes.append((await flush).data)

    assert set(edits) == {"UpdateProfileEntryPayload"}
    assert all(f["flushBuffer"]["flush"]["status"] == "FAILED" for f in flushes), flushes


async def _lock_waiters(resources: Resources) -> int:
    async with resources.sessions() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


async def test_a_failing_flush_takes_the_user_lock_before_its_flush_row(
    api: Api, llm: ScriptedLLM, app: Starlette
) -> None:
    """The lock order every writer keeps: the user's row first. A writer holding the user's
    lock (an edit, a deletion of the user) may then lock the user's flushes; had the failing
    flush locked its flush row first, the two would deadlock."""
    resources: Resources = app.state.resources
    llm.responder = _failing
    await api.ok(INSERT_CHAT, text="I teach chemistry.")
    async with resources.sessions() as session:
        item = (await session.scalars(select(BufferItem))).one()

    async with resources.sessions() as holder, holder.begin():
        await UserRepository(holder).lock(item.user_id)
        failing = asyncio.create_task(
            resources.flusher.flush(item.project_id, item.user_id, FlushTrigger.MANUAL)
        )
        for _ in range(500):  # 10 s: the flush fails, then queues behind the user's lock
            if await _lock_waiters(resources):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the failing flush never waited for the user's lock")
        assert not failing.done()
        # NOWAIT: had the flush locked its row before queueing, this would fail at once
        # (and without NOWAIT, deadlock).
        flush_id = await holder.scalar(
            select(col(Flush.id))
            .where(col(Flush.user_id) == item.user_id)
            .with_for_update(nowait=True)
        )
        assert flush_id is not None

    attempt = await asyncio.wait_for(failing, timeout=10)
    assert attempt.outcome is FlushOutcome.FLUSHED
    assert attempt.flush is not None
    assert (attempt.flush.id, attempt.flush.status) == (flush_id, "failed")
