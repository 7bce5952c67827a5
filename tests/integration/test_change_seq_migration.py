"""Migration 68bd8fa45131 numbers the changes already stored, per user, in their order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from powermemo_gql.changes.models import Change, ChangeKind
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core import migrations
from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.projects.models import Project
from powermemo_gql.users.models import User
from tests.conftest import make_settings

BEFORE_SEQ = "8b6fef182cd9"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(database_url))
    yield engine
    await engine.dispose()


async def test_existing_changes_are_numbered_per_user_in_id_order(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    async with unit_of_work(sessions) as session:
        project = Project(name="migrated")
        session.add(project)
        await session.flush()
        users = [User(project_id=project.id, external_id=name) for name in ("ann", "ben", "cat")]
        session.add_all(users)
        await session.flush()
    ann, ben, _ = users
    # Interleaved, so that the global ids of each user's changes have gaps.
    for user, value in [(ann, "a1"), (ben, "b1"), (ann, "a2"), (ann, "a3"), (ben, "b2")]:
        async with unit_of_work(sessions) as session:
            await ChangeRepository(session).append(
                [
                    Change(
                        project_id=project.id,
                        user_id=user.id,
                        kind=ChangeKind.ENTRY_ADDED.value,
                        new_value=value,
                    )
                ]
            )

    await migrations.downgrade(engine, BEFORE_SEQ)
    async with engine.connect() as connection:
        columns = list((await connection.execute(text("SELECT * FROM changes"))).keys())
        assert "seq" not in columns
    await migrations.upgrade(engine)

    async with engine.connect() as connection:
        numbered = (
            await connection.execute(
                text(
                    "SELECT users.external_id, changes.new_value, changes.seq FROM changes "
                    "JOIN users ON users.id = changes.user_id ORDER BY changes.id"
                )
            )
        ).all()
        rows = (await connection.execute(text("SELECT external_id, change_seq FROM users"))).all()
        counters: dict[str, int] = {row[0]: row[1] for row in rows}
    assert [tuple(row) for row in numbered] == [
        ("ann", "a1", 1),
        ("ben", "b1", 1),
        ("ann", "a2", 2),
        ("ann", "a3", 3),
        ("ben", "b2", 2),
    ]
    assert counters == {"ann": 3, "ben": 2, "cat": 0}
    # New changes go on from there.
    async with unit_of_work(sessions) as session:
        added = Change(project_id=project.id, user_id=ben.id, kind=ChangeKind.ENTRY_ADDED.value)
        await ChangeRepository(session).append([added])
    assert added.seq == 3
