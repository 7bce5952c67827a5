"""The recall indexer racing deletes of the same user's rows, on PostgreSQL: every writer of a
user's vectors takes the user's row lock first (docs/development.md), so a delete queues
behind an indexer pass instead of deadlocking with it.

PostgreSQL only: SQLite lets one writer in at a time, so nothing there can deadlock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.core.global_ids import global_id
from powermemo_gql.recall.models import MemoryVector, RecallKind
from powermemo_gql.recall.repository import RecallRepository
from powermemo_gql.settings import Settings
from tests.integration.recall.conftest import Memory
from tests.support import ProjectHandle

DELETE = """
mutation($id: ID!) {
  deleteEvent(input: {id: $id}) { __typename ... on DeleteEventPayload { deletedEventId } }
}
"""


@pytest.fixture(autouse=True)
def _postgres_only(settings: Settings) -> None:
    if settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite serializes writers: there is no deadlock to avoid")


async def _waiting_for_a_lock(memory: Memory) -> int:
    async with memory.resources.sessions() as session:
        found = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(found or 0)


async def test_a_delete_queues_behind_the_indexer_storing_that_events_facts(
    app: Starlette,
    project: ProjectHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The indexer stores the first fact's vector and holds its transaction open; deleteEvent
    comes in then. Before, the delete took the user's vector-version row, then waited for the
    fact row (its cascade) that the indexer held, while the indexer waited for that version
    row to bump it: `deadlock detected`, and one of the two failed."""
    stored_one = asyncio.Event()
    release = asyncio.Event()
    store_vector = RecallRepository.store_vector

    async def store_and_hold(self: RecallRepository, kind: RecallKind, *args: Any) -> bool:
        stored = await store_vector(self, kind, *args)
        if kind is RecallKind.FACT and not stored_one.is_set():
            stored_one.set()
            await asyncio.wait_for(release.wait(), timeout=30)
        return stored

    monkeypatch.setattr(RecallRepository, "store_vector", store_and_hold)
    alice = await Memory(app, project.api, "alice").create()
    event_id = await alice.event("- Went hiking in the Alps\n- Bought new boots")
    await asyncio.wait_for(stored_one.wait(), timeout=30)

    with caplog.at_level(logging.WARNING, logger="powermemo_gql.recall.index"):
        delete = asyncio.create_task(alice.api.ok(DELETE, id=global_id("Event", event_id)))
        for _ in range(300):  # until the delete waits for a lock the indexer holds
            if delete.done() or await _waiting_for_a_lock(alice):
                break
            await asyncio.sleep(0.01)
        assert not delete.done(), "the delete must queue behind the indexer's transaction"
        release.set()
        data = await asyncio.wait_for(delete, timeout=30)
        await alice.indexed()

    assert data["deleteEvent"] == {
        "__typename": "DeleteEventPayload",
        "deletedEventId": global_id("Event", event_id),
    }
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    async with alice.resources.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(MemoryVector))
        kinds = (await session.scalars(select(col(MemoryVector.kind)))).all()
    assert left == 0, f"vectors of the deleted event and its facts remain: {kinds}"
