"""Event reads are Core rows built into EventRecord, never ORM instances: timelines walked
both ways, the batched first pages and the lookup by ids, on whichever database runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.core.pagination import Page, PageArgs
from powermemo_gql.core.types import utcnow
from powermemo_gql.events.models import Event, EventRecord
from powermemo_gql.events.repository import EventRepository
from powermemo_gql.resources import Resources
from powermemo_gql.users.models import User
from tests.support import ProjectHandle

CREATE_USER = "mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }"
# Minutes before now each of alice's events happened: two share a time, so the id breaks the tie.
ALICE_AGES = [50, 40, 40, 30, 20, 10, 5]
TIMELINE = """
query($first: Int, $after: String, $last: Int, $before: String) {
  user(userId: "alice") {
    events(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { id summary tags { tag value } happenedFrom } }
      pageInfo { hasNextPage hasPreviousPage }
    }
  }
}
"""


@pytest.fixture
async def session(project: ProjectHandle, app: Starlette) -> AsyncIterator[AsyncSession]:
    """A session on a database where alice has ALICE_AGES' events and bob has two."""
    for user_id in ("alice", "bob"):
        await project.api.ok(CREATE_USER, id=user_id)
    resources: Resources = app.state.resources
    now = utcnow()
    async with resources.sessions() as writer, writer.begin():
        users = {u.external_id: u for u in await writer.scalars(select(User))}
        ages = {"alice": ALICE_AGES, "bob": [15, 1]}
        for name, user in users.items():
            for index, age in enumerate(ages[name]):
                writer.add(
                    Event(
                        project_id=user.project_id,
                        user_id=user.id,
                        summary=f"{name} {index}",
                        tags=[{"tag": "who", "value": name}],
                        happened_from=now - timedelta(minutes=age),
                        happened_to=now - timedelta(minutes=age - 1),
                    )
                )
    async with resources.sessions() as reader:
        yield reader


async def _user_id(session: AsyncSession, name: str) -> uuid.UUID:
    found = await session.scalars(select(col(User.id)).where(col(User.external_id) == name))
    return found.one()


async def _newest_first(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The user's event ids in timeline order, straight from the table."""
    rows = await session.execute(
        select(col(Event.id), col(Event.happened_from)).where(col(Event.user_id) == user_id)
    )
    return [row.id for row in sorted(rows, key=lambda r: (r.happened_from, r.id), reverse=True)]


def _records_only(session: AsyncSession, page: Page[EventRecord]) -> None:
    assert page.items
    assert all(type(item) is EventRecord for item in page.items)
    # No ORM instance was loaded for the read: the session holds none.
    assert not [o for o in session.identity_map.values() if isinstance(o, Event)]


async def test_a_timeline_walks_forward_and_back_as_records(session: AsyncSession) -> None:
    events = EventRepository(session)
    alice = await _user_id(session, "alice")
    expected = await _newest_first(session, alice)

    forward: list[uuid.UUID] = []
    flags: list[tuple[bool, bool]] = []
    after: str | None = None
    while True:
        page = await events.list_for_user(alice, PageArgs(first=2, after=after))
        _records_only(session, page)
        forward += [item.id for item in page.items]
        flags.append((page.has_previous_page, page.has_next_page))
        if not page.has_next_page:
            break
        after = page.cursors[-1]
    assert forward == expected
    assert flags == [(False, True), (True, True), (True, True), (True, False)]

    backward: list[uuid.UUID] = []
    flags = []
    before: str | None = None
    while True:
        page = await events.list_for_user(alice, PageArgs(last=3, before=before))
        _records_only(session, page)
        backward = [item.id for item in page.items] + backward
        flags.append((page.has_previous_page, page.has_next_page))
        if not page.has_previous_page:
            break
        before = page.cursors[0]
    assert backward == expected
    assert flags == [(True, False), (True, True), (False, True)]


async def test_records_carry_every_field(session: AsyncSession) -> None:
    alice = await _user_id(session, "alice")
    page = await EventRepository(session).list_for_user(alice, PageArgs(first=1))
    (record,) = page.items
    stored = await session.get(Event, record.id)
    assert stored is not None
    assert record == EventRecord(**{f.name: getattr(stored, f.name) for f in fields(EventRecord)})
    assert record.tags == [{"tag": "who", "value": "alice"}]
    assert record.happened_from.utcoffset() == timedelta(0)


async def test_first_pages_of_many_users_are_records(session: AsyncSession) -> None:
    events = EventRepository(session)
    alice, bob = await _user_id(session, "alice"), await _user_id(session, "bob")
    pages = await events.first_pages_for_users([alice, bob], 3)
    for user_id, page in pages.items():
        _records_only(session, page)
        assert all(item.user_id == user_id for item in page.items)
        # The same page, cursors included, as the user's own first page.
        alone = await events.list_for_user(user_id, PageArgs(first=3))
        assert (page.items, page.cursors, page.has_next_page) == (
            alone.items,
            alone.cursors,
            alone.has_next_page,
        )
    assert pages[alice].has_next_page
    assert not pages[bob].has_next_page
    assert len(pages[bob].items) == 2


async def test_of_user_reads_records_of_that_user_only(session: AsyncSession) -> None:
    events = EventRepository(session)
    alice, bob = await _user_id(session, "alice"), await _user_id(session, "bob")
    alices, bobs = await _newest_first(session, alice), await _newest_first(session, bob)
    found = await events.of_user(alice, [alices[0], bobs[0], alices[-1]])
    assert all(type(item) is EventRecord for item in found)
    assert {item.id for item in found} == {alices[0], alices[-1]}
    assert await events.of_user(alice, []) == []


async def test_the_timeline_over_graphql_pages_both_ways(
    project: ProjectHandle, session: AsyncSession
) -> None:
    api = project.api
    first = (await api.ok(TIMELINE, first=4))["user"]["events"]
    assert [e["node"]["summary"] for e in first["edges"]] == [
        "alice 6",
        "alice 5",
        "alice 4",
        "alice 3",
    ]
    assert first["edges"][0]["node"]["tags"] == [{"tag": "who", "value": "alice"}]
    assert first["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False}
    back = await api.ok(TIMELINE, last=2, before=first["edges"][2]["cursor"])
    page = back["user"]["events"]
    assert [e["node"]["id"] for e in page["edges"]] == [e["node"]["id"] for e in first["edges"][:2]]
    assert [e["cursor"] for e in page["edges"]] == [e["cursor"] for e in first["edges"][:2]]
    assert page["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False}
