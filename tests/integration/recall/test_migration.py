"""The recall migration gives the events written before it their facts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from powermemo_gql.core import migrations
from powermemo_gql.core.db import create_engine
from powermemo_gql.core.types import JSONType, UTCDateTime
from tests.conftest import make_settings

BEFORE_RECALL = "ca0d043ed3fb"
SAID = datetime(2024, 3, 6, 12, tzinfo=UTC)


def _table(name: str, *columns: tuple[str, Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(n, t) for n, t in columns))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(database_url))
    yield engine
    await migrations.upgrade(engine)  # the next test's database is at head again
    await engine.dispose()


async def test_existing_events_get_one_fact_per_summary_line(engine: AsyncEngine) -> None:
    await migrations.downgrade(engine, BEFORE_RECALL)
    project, user, event = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    uid, when, js = sa.Uuid(), UTCDateTime(), JSONType
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(
                _table(
                    "projects",
                    ("id", uid),
                    ("name", sa.String()),
                    ("profile_config", js),
                    ("created_at", when),
                )
            ).values(id=project, name="old", profile_config={}, created_at=SAID)
        )
        await connection.execute(
            sa.insert(
                _table(
                    "users",
                    ("id", uid),
                    ("project_id", uid),
                    ("external_id", sa.String()),
                    ("data", js),
                    ("created_at", when),
                    ("updated_at", when),
                )
            ).values(
                id=user,
                project_id=project,
                external_id="alice",
                data={},
                created_at=SAID,
                updated_at=SAID,
            )
        )
        await connection.execute(
            sa.insert(
                _table(
                    "events",
                    ("id", uid),
                    ("project_id", uid),
                    ("user_id", uid),
                    ("summary", sa.Text()),
                    ("tags", js),
                    ("profile_delta", js),
                    ("happened_from", when),
                    ("happened_to", when),
                    ("created_at", when),
                )
            ).values(
                id=event,
                project_id=project,
                user_id=user,
                summary="- Went hiking in the Alps\n\n  * Bought new boots\n",
                tags=[],
                profile_delta=[],
                happened_from=SAID,
                happened_to=SAID,
                created_at=SAID,
            )
        )
    await migrations.upgrade(engine)
    facts = _table(
        "event_facts",
        ("event_id", uid),
        ("user_id", uid),
        ("content", sa.Text()),
        ("position", sa.Integer()),
        ("happened_from", when),
        ("embedded_model", sa.String()),
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(facts).order_by(facts.c.position))).all()
    assert [(r.event_id, r.user_id, r.content) for r in rows] == [
        (event, user, "Went hiking in the Alps"),
        (event, user, "Bought new boots"),
    ]
    assert {(r.happened_from, r.embedded_model) for r in rows} == {(SAID, None)}
