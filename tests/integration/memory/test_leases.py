"""A flush that loses its lease writes nothing; edits made during a flush are not lost."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.buffers.models import BufferItem, Flush, FlushLock, FlushTrigger
from powermemo_gql.buffers.repository import FlushLockRepository
from powermemo_gql.core.clock import db_now
from powermemo_gql.core.types import utcnow
from powermemo_gql.events.models import Event
from powermemo_gql.memory.job import FlushOutcome
from powermemo_gql.resources import Resources
from tests.integration.memory.conftest import memory_responder
from tests.llm_server import Reply, ScriptedLLM
from tests.support import ProjectHandle

SETUP = """
mutation {
  createUser(input: {userId: "alice"}) { __typename }
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [
    {role: USER, content: "I moved to Paris."}
  ]}}}) { __typename }
}
"""


def _slow(delay: float, **answers: Any) -> Any:
    fast = memory_responder(**answers)

    def respond(request: dict[str, Any]) -> Reply:
        reply = fast(request)
        return Reply(content=reply.content, delay=delay)

    return respond


async def _ids(app: Starlette) -> tuple[Any, Any]:
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        item = (await session.scalars(select(BufferItem))).one()
    return item.project_id, item.user_id


async def _wait_for_request(llm: ScriptedLLM) -> None:
    for _ in range(1000):  # 10 s: CI machines can be slow
        if llm.requests:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the flush never reached the LLM")


async def test_flush_that_lost_its_lease_writes_nothing_and_is_redone(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    resources: Resources = app.state.resources
    llm.responder = _slow(0.3)
    await project.api.ok(SETUP)
    project_id, user_id = await _ids(app)

    running = asyncio.create_task(resources.flusher.flush(project_id, user_id, FlushTrigger.MANUAL))
    await _wait_for_request(llm)
    # The lease runs out while the LLM works (as after a long stall), and recovery runs.
    async with resources.sessions() as session, session.begin():
        await session.execute(update(FlushLock).values(expires_at=utcnow()))
    assert await resources.flusher.recover() == 1

    lost = await running  # LeaseLost: it wrote nothing
    assert lost.outcome is FlushOutcome.INTERRUPTED
    async with resources.sessions() as session:
        events = await session.scalar(select(func.count()).select_from(Event))
        statuses = (await session.scalars(select(col(BufferItem.status)))).all()
        flushes = (await session.scalars(select(col(Flush.status)))).all()
    assert events == 0
    assert statuses == ["idle"]
    assert flushes == ["abandoned"]
    async with resources.sessions() as session:
        abandoned = (await session.scalars(select(Flush))).one()
    assert abandoned.llm_calls >= 1  # what it spent still counts

    llm.responder = memory_responder()
    redone = (await resources.flusher.flush(project_id, user_id, FlushTrigger.MANUAL)).flush
    assert redone is not None
    assert redone.status == "done"
    async with resources.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1


async def test_a_flush_starts_when_it_gets_the_lease_not_when_it_asked(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    resources: Resources = app.state.resources
    llm.responder = memory_responder()
    await project.api.ok(SETUP)
    project_id, user_id = await _ids(app)
    async with resources.sessions() as session, session.begin():
        session.add(
            FlushLock(
                user_id=user_id,
                project_id=project_id,
                flush_id=uuid.uuid4(),
                expires_at=utcnow() + timedelta(minutes=5),
            )
        )
    # The previous holder releases its lease in a transaction that takes a while to commit:
    # on PostgreSQL the waiting flush's acquire blocks on it.
    async with resources.sessions() as holder:
        await holder.execute(delete(FlushLock))
        waiting = asyncio.create_task(
            resources.flusher.flush(project_id, user_id, FlushTrigger.MANUAL, wait_seconds=10)
        )
        await asyncio.sleep(0.3)
        released_at = utcnow()
        await holder.commit()
    attempt = await waiting
    assert attempt.outcome is FlushOutcome.FLUSHED
    assert attempt.flush is not None
    assert attempt.flush.status == "done"
    assert attempt.flush.started_at >= released_at


async def test_manual_edit_during_a_flush_wins(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    resources: Resources = app.state.resources
    await project.api.ok(SETUP)
    added = await project.api.ok(
        """mutation { addProfileEntry(input: {userId: "alice", topic: "contact_info",
        subTopic: "city", content: "Lyon"}) { ... on AddProfileEntryPayload { entry { id } } } }"""
    )
    entry_id = added["addProfileEntry"]["entry"]["id"]
    llm.responder = _slow(
        0.3,
        facts=[{"topic": "contact_info", "sub_topic": "city", "content": "Paris"}],
        decisions=[{"index": 0, "action": "update", "content": "Paris"}],
    )
    project_id, user_id = await _ids(app)
    running = asyncio.create_task(resources.flusher.flush(project_id, user_id, FlushTrigger.MANUAL))
    await _wait_for_request(llm)
    await project.api.ok(
        'mutation($id: ID!) { updateProfileEntry(input: {id: $id, content: "Marseille"}) '
        "{ __typename } }",
        id=entry_id,
    )
    flush = (await running).flush
    assert flush is not None
    assert flush.status == "done"
    memory = await project.api.ok(
        '{ user(userId: "alice") { profile { content } '
        "events(first: 1) { nodes { profileDelta { action } } } } }"
    )
    assert memory["user"]["profile"] == [{"content": "Marseille"}]
    # The event records what the flush wrote: nothing, since the edit won.
    assert memory["user"]["events"]["nodes"][0]["profileDelta"] == []


@pytest.mark.settings(flush_lease_seconds=0.5)  # renewed every ~0.17 s
async def test_a_failed_renewal_does_not_fail_the_flush(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources: Resources = app.state.resources
    real_renew = FlushLockRepository.renew
    calls = 0

    async def flaky_renew(self: FlushLockRepository, *args: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("database connection reset")
        return await real_renew(self, *args)

    monkeypatch.setattr(FlushLockRepository, "renew", flaky_renew)
    llm.responder = _slow(0.4)
    await project.api.ok(SETUP)
    project_id, user_id = await _ids(app)
    flush = (await resources.flusher.flush(project_id, user_id, FlushTrigger.MANUAL)).flush
    assert calls >= 2
    assert flush is not None
    assert flush.status == "done"


@pytest.mark.settings(flush_timeout_seconds=0.3)
async def test_flush_timeout_fails_the_flush(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    resources: Resources = app.state.resources
    llm.responder = _slow(2.0)
    await project.api.ok(SETUP)
    project_id, user_id = await _ids(app)
    attempt = await resources.flusher.flush(project_id, user_id, FlushTrigger.MANUAL)
    assert attempt.outcome is FlushOutcome.FLUSHED  # it ran, and failed
    flush = attempt.flush
    assert flush is not None
    assert flush.status == "failed"
    assert flush.error == "timed out after 0.3 s"
    buffer = await project.api.ok('{ user(userId: "alice") { buffer { failedCount } } }')
    assert buffer["user"]["buffer"]["failedCount"] == 1


async def test_lease_times_come_from_the_database_clock_and_compare_with_stored_ones(
    project: ProjectHandle, app: Starlette
) -> None:
    """db_now is written in the form each dialect stores times, so leases set by SQL compare
    correctly with times the app wrote (SQLite compares them as strings)."""
    resources: Resources = app.state.resources
    await project.api.ok(SETUP)
    project_id, user_id = await _ids(app)
    before = utcnow()
    async with resources.sessions() as session, session.begin():
        flush = Flush(project_id=project_id, user_id=user_id, trigger="manual")
        assert await FlushLockRepository(session).acquire(flush, timedelta(seconds=30))
    after = utcnow()
    async with resources.sessions() as session:
        lock = (await session.scalars(select(FlushLock))).one()
        stored = await session.scalar(select(db_now(30)))
    # The test process and the database share one host clock.
    slack = timedelta(seconds=1)
    assert (
        before + timedelta(seconds=30) - slack
        <= lock.expires_at
        <= after + timedelta(seconds=30) + slack
    )
    assert stored is not None
    assert stored.tzinfo is not None
    assert lock.expires_at - slack <= stored

    for expires_at, expired in ((utcnow() + timedelta(seconds=2), 0), (utcnow(), 1)):
        async with resources.sessions() as session, session.begin():
            await session.execute(update(FlushLock).values(expires_at=expires_at))
        async with resources.sessions() as session, session.begin():
            assert await FlushLockRepository(session).expire() == expired
