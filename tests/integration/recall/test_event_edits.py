"""updateEvent / deleteEvent: facts rebuilt and re-indexed, vectors dropped, feed records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.core.global_ids import global_id
from powermemo_gql.recall.models import EventFact, MemoryVector
from tests.conftest import FAKE_NOW, ProjectFactory
from tests.integration.recall.conftest import Memory, texts
from tests.support import ProjectHandle

UPDATE = """
mutation($id: ID!, $summary: String, $tags: [EventTagValueInput!]) {
  updateEvent(input: {id: $id, summary: $summary, tags: $tags}) {
    __typename
    ... on UpdateEventPayload { event { id summary tags { tag value } } }
    ... on NotFound { code id }
    ... on InvalidInput { code field }
  }
}
"""
DELETE = """
mutation($id: ID!) {
  deleteEvent(input: {id: $id}) {
    __typename
    ... on DeleteEventPayload { deletedEventId }
    ... on NotFound { code id }
  }
}
"""
CHANGES = """
query { user(userId: "alice") { changes(first: 50) { nodes { kind eventId oldValue newValue } } } }
"""
CHANGE_TIMES = '{ user(userId: "alice") { changes(first: 50) { nodes { kind createdAt } } } }'


async def _changes(memory: Memory) -> list[dict[str, Any]]:
    data = await memory.api.ok(CHANGES)
    nodes: list[dict[str, Any]] = data["user"]["changes"]["nodes"]
    return nodes


async def _facts_and_vectors(memory: Memory, event_id: uuid.UUID) -> tuple[list[str], set[str]]:
    async with memory.resources.sessions() as session:
        facts = (
            await session.scalars(
                select(EventFact)
                .where(col(EventFact.event_id) == event_id)
                .order_by(col(EventFact.position))
            )
        ).all()
        kinds = (await session.scalars(select(col(MemoryVector.kind)))).all()
        targets = (await session.scalars(select(col(MemoryVector.target_id)))).all()
    assert len(kinds) == len(targets)
    return [f.content for f in facts], {f"{k}:{t}" for k, t in zip(kinds, targets, strict=True)}


async def test_an_edited_event_is_refacted_reindexed_and_recorded(
    app: Starlette, project: ProjectHandle
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    event_id = await alice.event("- Went hiking in the Alps\n- Bought new boots")
    await alice.indexed()
    old_facts, old_vectors = await _facts_and_vectors(alice, event_id)
    assert old_facts == ["Went hiking in the Alps", "Bought new boots"]
    assert len(old_vectors) == 3

    data = await alice.api.ok(
        UPDATE,
        id=global_id("Event", event_id),
        summary="- Went skiing in the Alps\n- Broke a ski\n- Ate fondue",
        tags=[{"tag": "activity", "value": "sport"}],
    )
    event = data["updateEvent"]["event"]
    assert event["tags"] == [{"tag": "activity", "value": "sport"}]
    await alice.indexed()

    new_facts, new_vectors = await _facts_and_vectors(alice, event_id)
    assert new_facts == ["Went skiing in the Alps", "Broke a ski", "Ate fondue"]
    assert len(new_vectors) == 4  # the event and its three new facts; old facts' vectors gone
    assert not {v for v in old_vectors if v.startswith("fact:")} & new_vectors

    assert texts(await alice.search("boots", mode="KEYWORD")) == []
    found = await alice.search("fondue", kinds=["FACT"], tags=["activity:sport"])
    assert texts(found)[0] == "Ate fondue"

    [record] = [c for c in await _changes(alice) if c["kind"] == "EVENT_UPDATED"]
    assert record["eventId"] == global_id("Event", event_id)
    assert record["oldValue"] == "- Went hiking in the Alps\n- Bought new boots"
    assert record["newValue"].startswith("- Went skiing")

    # Only tags: the facts and vectors stay, the feed records it.
    await alice.api.ok(UPDATE, id=global_id("Event", event_id), tags=[])
    await alice.indexed()
    assert await _facts_and_vectors(alice, event_id) == (new_facts, new_vectors)
    assert [c["kind"] for c in await _changes(alice)].count("EVENT_UPDATED") == 2


async def test_a_deleted_event_takes_its_facts_and_vectors(
    app: Starlette, project: ProjectHandle
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    event_id = await alice.event("- Went hiking in the Alps")
    await alice.entry("interest", "sport", "Hiking")
    await alice.indexed()

    data = await alice.api.ok(DELETE, id=global_id("Event", event_id))
    assert data["deleteEvent"] == {
        "__typename": "DeleteEventPayload",
        "deletedEventId": global_id("Event", event_id),
    }
    facts, vectors = await _facts_and_vectors(alice, event_id)
    assert facts == []
    assert [v.split(":")[0] for v in vectors] == ["profile"]
    assert texts(await alice.search("hiking")) == ["Hiking"]
    [record] = [c for c in await _changes(alice) if c["kind"] == "EVENT_DELETED"]
    assert record["eventId"] == global_id("Event", event_id)
    assert record["oldValue"] == "- Went hiking in the Alps"
    assert record["newValue"] is None

    again = await alice.api.ok(DELETE, id=global_id("Event", event_id))
    assert again["deleteEvent"]["__typename"] == "NotFound"


async def test_edits_reach_only_the_callers_events_and_check_input(
    app: Starlette, project: ProjectHandle, make_project: ProjectFactory
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    event_id = await alice.event("- Went hiking")
    other = await make_project("other")

    unknown = global_id("Event", "not-an-id")
    for api, id_ in ((other.api, global_id("Event", event_id)), (project.api, unknown)):
        for document, name in ((UPDATE, "updateEvent"), (DELETE, "deleteEvent")):
            result = (await api.ok(document, id=id_, summary="x"))[name]
            assert result == {"__typename": "NotFound", "code": "NOT_FOUND", "id": id_}
    # Not a global id at all: refused, naming the field.
    updated = (await project.api.ok(UPDATE, id="not-an-id", summary="x"))["updateEvent"]
    assert updated["__typename"] == "InvalidInput"
    deleted = await project.api.run(DELETE, id="not-an-id")
    assert deleted.error_codes() == ["BAD_USER_INPUT"]
    assert deleted.errors[0]["extensions"]["field"] == "input.id"

    for variables, field in (
        ({"summary": "   "}, "summary"),
        ({"tags": [{"tag": "", "value": "x"}]}, "tags[0].tag"),
        ({"tags": [{"tag": "a", "value": "b" * 101}]}, "tags[0].value"),
    ):
        result = (await alice.api.ok(UPDATE, id=global_id("Event", event_id), **variables))[
            "updateEvent"
        ]
        assert result == {"__typename": "InvalidInput", "code": "INVALID_INPUT", "field": field}


@pytest.mark.fake_clock
async def test_event_edits_are_stamped_with_the_apps_clock(
    app: Starlette, project: ProjectHandle
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    event_id = await alice.event("- Went hiking in the Alps")

    await alice.api.ok(UPDATE, id=global_id("Event", event_id), summary="- Went skiing")
    async with alice.resources.sessions() as session:
        [fact] = (
            await session.scalars(select(EventFact).where(col(EventFact.event_id) == event_id))
        ).all()
    assert fact.created_at == FAKE_NOW  # rebuilt by the edit
    await alice.indexed()
    async with alice.resources.sessions() as session:
        stamps = set((await session.scalars(select(col(MemoryVector.created_at)))).all())
    assert stamps == {FAKE_NOW}  # the re-indexed event's and facts' vectors
    await alice.api.ok(DELETE, id=global_id("Event", event_id))

    changes = (await alice.api.ok(CHANGE_TIMES))["user"]["changes"]["nodes"]
    assert [change["kind"] for change in changes] == ["EVENT_UPDATED", "EVENT_DELETED"]
    assert {datetime.fromisoformat(change["createdAt"]) for change in changes} == {FAKE_NOW}
