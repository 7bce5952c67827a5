"""The use cases' effects (followers told, a flush checked for) run once their unit of work
has committed: they see the committed change, a failed or rolled-back write triggers none,
and an insert replayed by its idempotency key schedules nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.buffers.models import BufferItem
from powermemo_gql.changes.models import Change, ChangeKind
from powermemo_gql.core.global_ids import raw_id
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.resources import Resources
from powermemo_gql.usecases import UseCases
from powermemo_gql.users.models import User
from tests.support import ProjectHandle

ADD_ENTRY = """
mutation($content: String!) {
  addProfileEntry(input: {userId: "alice", topic: "work", subTopic: "title", content: $content}) {
    __typename
    ... on AddProfileEntryPayload { entry { id } }
  }
}
"""
INSERT = """
mutation($key: String) {
  insertBlob(input: {userId: "alice", idempotencyKey: $key,
                     blob: {chat: {messages: [{role: USER, content: "I moved to Lisbon"}]}}}) {
    __typename
    ... on InsertBlobPayload { replayed }
  }
}
"""


class Notified:
    """feed.notify's stand-in: what the user's change log held, committed, when told."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.seen: list[list[str]] = []

    async def __call__(self, user_id: uuid.UUID) -> None:
        async with self.resources.sessions() as session:
            kinds = await session.scalars(
                select(col(Change.kind))
                .where(col(Change.user_id) == user_id)
                .order_by(col(Change.seq))
            )
            self.seen.append(list(kinds))


@pytest.fixture
async def alice(project: ProjectHandle, app: Starlette) -> User:
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        return (await session.scalars(select(User).where(col(User.external_id) == "alice"))).one()


async def test_followers_are_told_after_the_commit_and_only_of_what_committed(
    app: Starlette, project: ProjectHandle, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources: Resources = app.state.resources
    notified = Notified(resources)
    monkeypatch.setattr(resources.feed, "notify", notified)

    added = await project.api.ok(ADD_ENTRY, content="engineer")
    assert added["addProfileEntry"]["__typename"] == "AddProfileEntryPayload"
    # Told once, and the change was already readable by another session.
    assert notified.seen == [[ChangeKind.ENTRY_ADDED]]

    refused = await project.api.ok(ADD_ENTRY, content="engineer")  # same slot: a conflict
    assert refused["addProfileEntry"]["__typename"] == "ProfileEntryAlreadyExists"
    assert notified.seen == [[ChangeKind.ENTRY_ADDED]]

    # A use case whose unit of work rolls back afterwards: its change and its effect are gone.
    entry_id = added["addProfileEntry"]["entry"]["id"]

    async def delete_then_fail() -> None:
        async with unit_of_work(resources.sessions) as session:
            await UseCases(session, resources).delete_profile_entry(
                alice.project_id, raw_id(entry_id, "ProfileEntry", "id")
            )
            raise LookupError("a later step of the same unit failed")

    with pytest.raises(LookupError):
        await delete_then_fail()
    assert notified.seen == [[ChangeKind.ENTRY_ADDED]]
    async with resources.sessions() as session:
        kinds = (await session.scalars(select(col(Change.kind)))).all()
    assert kinds == [ChangeKind.ENTRY_ADDED]


async def test_an_insert_checks_the_buffer_after_its_commit_and_a_replay_does_not(
    app: Starlette, project: ProjectHandle, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources: Resources = app.state.resources
    checks: list[tuple[uuid.UUID, int | None, int]] = []

    async def after_insert(
        project_id: uuid.UUID, user_id: uuid.UUID, idle_tokens: int | None = None
    ) -> None:
        async with resources.sessions() as session:
            items = (await session.scalars(select(BufferItem))).all()
        checks.append((user_id, idle_tokens, len(items)))

    monkeypatch.setattr(resources.flusher, "after_insert", after_insert)

    first = await project.api.ok(INSERT, key="k-1")
    assert first["insertBlob"]["replayed"] is False
    [(user_id, idle_tokens, committed_items)] = checks
    assert user_id == alice.id
    assert committed_items == 1  # the buffer item was committed before the check ran
    assert idle_tokens is None  # with an idempotency key the insert does not count them

    again = await project.api.ok(INSERT, key="k-1")
    assert again["insertBlob"]["replayed"] is True
    assert len(checks) == 1

    await project.api.ok(INSERT, key=None)  # no key: one statement, which counts the buffer
    assert len(checks) == 2
    assert checks[1][2] == 2
    assert checks[1][1] is not None
    assert checks[1][1] > 0
