"""PostgreSQL: the keyword side of search reads the profile entries' full-text index instead
of parsing every entry of the user: the index's expression (its migration) is the one the
search builds (recall/sources.py keyword_text). Events and facts have had theirs before."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.repository import RecallRepository, Scope
from powermemo_gql.resources import Resources
from powermemo_gql.users.models import User
from tests.integration.recall.conftest import Memory
from tests.support import ProjectHandle


async def test_keyword_match_uses_the_full_text_indexes(
    app: Starlette, project: ProjectHandle
) -> None:
    resources: Resources = app.state.resources
    if resources.engine.dialect.name != "postgresql":
        pytest.skip("the full-text indexes exist on PostgreSQL only")
    memory = await Memory(app, project.api, f"kw-{uuid.uuid4().hex[:8]}").create()
    await memory.entry("hobby", "outdoors", "Hiking in the Alps")
    async with resources.sessions() as session, session.begin():
        user = (
            await session.scalars(select(User).where(col(User.external_id) == memory.user))
        ).one()
        session.add_all(  # enough rows that the user's own index is not the cheap way
            ProfileEntry(
                project_id=user.project_id,
                user_id=user.id,
                topic="filler",
                sub_topic=f"s{i}",
                content=f"word{i} other{i}",
            )
            for i in range(2000)
        )
    scope = Scope(user.project_id, user.id)
    async with resources.engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE profile_entries")
        statement = RecallRepository(session).keyword_statement(
            [RecallKind.PROFILE], scope, ["hiking", "boots"]
        )
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=resources.engine.dialect)
        assert isinstance(compiled, SQLCompiler)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        plan = await connection.exec_driver_sql(f"EXPLAIN {compiled}", params)
        text = "\n".join(row[0] for row in plan)
    assert "ix_profile_entries_keyword_fts" in text, text
