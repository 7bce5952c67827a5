"""user.events(search:): full-text on PostgreSQL, a substring fallback on SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from starlette.applications import Starlette

from powermemo_gql.core.types import utcnow
from powermemo_gql.events.models import Event
from powermemo_gql.resources import Resources
from powermemo_gql.users.models import User
from tests.support import ProjectHandle

SEARCH = """
query($search: String, $first: Int, $after: String) {
  user(userId: "alice") {
    events(search: $search, first: $first, after: $after) {
      nodes { summary }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
SUMMARIES = [
    "Alice moved to Paris with her cat.",
    "Alice started teaching chemistry in Lyon.",
    "Alice adopted a second cat.",
    "Alice visited Paris for a conference on chemistry.",
]


@pytest.fixture
async def with_events(project: ProjectHandle, app: Starlette) -> ProjectHandle:
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    resources: Resources = app.state.resources
    async with resources.sessions() as session, session.begin():
        user = (await session.scalars(select(User))).one()
        now = utcnow()
        for age, summary in enumerate(SUMMARIES):
            session.add(
                Event(
                    project_id=user.project_id,
                    user_id=user.id,
                    summary=summary,
                    created_at=now - timedelta(minutes=len(SUMMARIES) - age),
                )
            )
    return project


async def _search(project: ProjectHandle, search: str | None, **kwargs: object) -> list[str]:
    data = await project.api.ok(SEARCH, search=search, first=kwargs.get("first"), after=None)
    return [n["summary"] for n in data["user"]["events"]["nodes"]]


async def test_search_matches_every_word_newest_first(with_events: ProjectHandle) -> None:
    assert await _search(with_events, "paris") == [SUMMARIES[3], SUMMARIES[0]]
    assert await _search(with_events, "Paris chemistry") == [SUMMARIES[3]]
    assert await _search(with_events, "cat") == [SUMMARIES[2], SUMMARIES[0]]
    assert await _search(with_events, "london") == []


async def test_no_search_lists_everything(with_events: ProjectHandle) -> None:
    assert await _search(with_events, None) == list(reversed(SUMMARIES))
    assert await _search(with_events, "   ") == list(reversed(SUMMARIES))


async def test_search_pages(with_events: ProjectHandle) -> None:
    first = await with_events.api.ok(SEARCH, search="alice", first=2, after=None)
    page = first["user"]["events"]
    assert [n["summary"] for n in page["nodes"]] == [SUMMARIES[3], SUMMARIES[2]]
    assert page["pageInfo"]["hasNextPage"]
    rest = await with_events.api.ok(
        SEARCH, search="alice", first=2, after=page["pageInfo"]["endCursor"]
    )
    assert [n["summary"] for n in rest["user"]["events"]["nodes"]] == [SUMMARIES[1], SUMMARIES[0]]


async def test_search_special_characters_are_literal(with_events: ProjectHandle) -> None:
    assert await _search(with_events, "%") == []
    assert await _search(with_events, "_") == []


async def test_overlong_search_is_bad_user_input(with_events: ProjectHandle) -> None:
    response = await with_events.api.run(SEARCH, search="x" * 501, first=None, after=None)
    assert response.error_codes() == ["BAD_USER_INPUT"]


async def test_postgres_has_the_full_text_index(app: Starlette) -> None:
    resources: Resources = app.state.resources
    if resources.engine.dialect.name != "postgresql":
        pytest.skip("the full-text index exists on PostgreSQL only")
    async with resources.engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_events_summary_fts'")
        )
    assert found is not None
    assert "to_tsvector('simple'" in found
