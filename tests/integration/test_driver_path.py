"""The hot statements on the asyncpg connection itself (core/driver_path.py): the same records
as through SQLAlchemy, only on an autocommitting connection (a READ block, insertBlob's one
statement), never hidden from a statement listener, and a failure on the driver reported as
SQLAlchemy would (a dead connection: lost, run again)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.blobs.models import Blob
from powermemo_gql.blobs.repository import BlobRepository
from powermemo_gql.core.db import create_engine, create_session_factory, database_trouble
from powermemo_gql.core.driver_path import DRIVER_CONNECTION, DriverStatement
from powermemo_gql.core.request_unit import Mode, RequestUnit
from powermemo_gql.core.uow import as_one_statement, unit_of_work
from powermemo_gql.profiles.repository import ProfileRepository
from powermemo_gql.users.repository import UserRepository
from tests.conftest import FAKE_NOW, TEST_DATABASE_URL, make_settings
from tests.integration.blobs.test_dataloaders import recorded_statements, touching
from tests.support import ProjectHandle, raw_uuid

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL")

ADD_ENTRY = """
mutation($topic: String!, $sub: String!) {
  addProfileEntry(input: {userId: "alice", topic: $topic, subTopic: $sub, content: "x"}) {
    __typename
  }
}
"""


async def _alice(project: ProjectHandle) -> None:
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    for topic, sub in [("work", "title"), ("interest", "sport"), ("work", "company")]:
        await project.api.ok(ADD_ENTRY, topic=topic, sub=sub)


async def _reads(session: AsyncSession, project_id: uuid.UUID) -> tuple[Any, ...]:
    user = await UserRepository(session).record_by_external_id(project_id, "alice")
    assert user is not None
    entries = ProfileRepository(session)
    return (
        user,
        await entries.records_for_users([user.id]),
        await entries.records_for_users([user.id], ["work"]),
        await UserRepository(session).record_by_external_id(project_id, "nobody"),
    )


async def test_the_driver_path_what_sqlalchemy_reads(
    app: Any, project: ProjectHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _alice(project)
    sessions = app.state.resources.sessions
    project_id = raw_uuid(project.id)
    async with sessions() as session:  # no request unit: through SQLAlchemy
        expected = await _reads(session, project_id)

    unit = RequestUnit(sessions)
    unit.begin_operation(Mode.READ)
    async with unit.work() as session:
        assert session.info.get(DRIVER_CONNECTION) is not None

        async def no_sqlalchemy(*_args: Any, **_kwargs: Any) -> Any:
            raise AssertionError("a hot read went through SQLAlchemy")

        monkeypatch.setattr(session, "execute", no_sqlalchemy)
        read = await _reads(session, project_id)
    await unit.close()

    assert read == expected
    user, every, work, nobody = read
    assert [(e.topic, e.sub_topic) for e in every] == [
        ("interest", "sport"),
        ("work", "company"),
        ("work", "title"),
    ]
    assert [e.sub_topic for e in work] == ["company", "title"]
    assert nobody is None
    assert isinstance(user.id, uuid.UUID)
    assert user.created_at.tzinfo is not None


@pytest.mark.parametrize("mode", [Mode.SNAPSHOT, Mode.WRITE])
async def test_only_an_autocommitting_read_block_uses_the_driver(app: Any, mode: Mode) -> None:
    unit = RequestUnit(app.state.resources.sessions)
    unit.begin_operation(mode)
    async with unit.work() as session:
        await session.execute(text("SELECT 1"))
        assert DRIVER_CONNECTION not in session.info
    await unit.close()


async def test_a_statement_listener_sees_every_read(app: Any, project: ProjectHandle) -> None:
    await _alice(project)
    with recorded_statements(app) as seen:
        unit = RequestUnit(app.state.resources.sessions)
        unit.begin_operation(Mode.READ)
        async with unit.work() as session:
            await _reads(session, raw_uuid(project.id))
            assert DRIVER_CONNECTION not in session.info
        await unit.close()
    assert len(touching(seen, "users")) == 2
    assert len(touching(seen, "profile_entries")) == 2


async def _read_after_the_backend_died(unit: RequestUnit, project_id: uuid.UUID) -> None:
    async with unit.work() as session:
        driver = session.info[DRIVER_CONNECTION]
        assert TEST_DATABASE_URL is not None
        killer = await asyncpg.connect(TEST_DATABASE_URL.replace("+asyncpg", ""))
        try:
            await killer.execute("SELECT pg_terminate_backend($1)", driver.get_server_pid())
        finally:
            await killer.close()
        for _ in range(100):  # until the driver has seen the socket close
            if driver.is_closed():
                break
            await asyncio.sleep(0.05)
        await UserRepository(session).record_by_external_id(project_id, "alice")


async def test_a_connection_dying_under_a_driver_read_is_a_lost_read(
    app: Any, project: ProjectHandle
) -> None:
    await _alice(project)
    unit = RequestUnit(app.state.resources.sessions)
    unit.begin_operation(Mode.READ)
    with pytest.raises(DBAPIError) as raised:
        await _read_after_the_backend_died(unit, raw_uuid(project.id))
    # SQLAlchemy's own verdict, as for any read: the view runs such a query once more.
    assert raised.value.connection_invalidated
    assert database_trouble(raised.value) is not None
    assert unit.take_lost_read()
    await unit.close()


@pytest.fixture
async def slow_sessions(database_url: str) -> AsyncIterator[Any]:
    engine = create_engine(make_settings(database_url, database_statement_timeout=0.5))
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def test_a_driver_read_past_the_statement_timeout_is_busy_and_not_run_twice(
    slow_sessions: Any,
) -> None:
    slow = DriverStatement(select(func.pg_sleep(5).label("slept")), lambda slept: slept)
    unit = RequestUnit(slow_sessions)
    unit.begin_operation(Mode.READ)
    with pytest.raises(asyncpg.QueryCanceledError) as raised:  # the driver's, not a rerun's
        async with unit.work() as session:
            await slow.all(session, {})
    await unit.close()
    assert database_trouble(raised.value) == (
        "DATABASE_BUSY",
        "The database is busy; try again shortly.",
    )


async def test_insert_blob_is_one_statement_on_the_driver(
    app: Any, project: ProjectHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _alice(project)
    sessions = app.state.resources.sessions
    blob = {
        "id": uuid.uuid4(),
        "project_id": raw_uuid(project.id),
        "type": "doc",
        "payload": {"content": "ünïcode \u2603", "nested": [1, {"a": None}]},
        "fields": {"source": "test"},
        "created_at": FAKE_NOW,
        "idempotency_key": None,
    }
    item = {
        "id": uuid.uuid4(),
        "project_id": raw_uuid(project.id),
        "blob_type": "doc",
        "token_count": 7,
        "status": "idle",
        "updated_at": FAKE_NOW,
    }
    async with unit_of_work(sessions) as session:
        await as_one_statement(session)
        assert session.info.get(DRIVER_CONNECTION) is not None

        async def no_sqlalchemy(*_args: Any, **_kwargs: Any) -> Any:
            raise AssertionError("the insert went through SQLAlchemy")

        monkeypatch.setattr(session, "execute", no_sqlalchemy)
        found = await BlobRepository(session).insert_for_user(
            raw_uuid(project.id), "alice", blob, item
        )
        monkeypatch.undo()
    assert DRIVER_CONNECTION not in session.info
    assert found is not None
    async with sessions() as session:
        stored = await session.get(Blob, blob["id"])
        assert stored is not None
        assert found == (stored.user_id, 7)
        assert stored.payload == blob["payload"]
        assert stored.fields == blob["fields"]
        assert stored.created_at == FAKE_NOW
