"""Search keeps each user's words, counts and stale rows in memory (recall/memory_index.py):
a write through another instance on the same database is seen by the next search. Neither
instance has an embedder here, so no vector version moves (no indexer embeds the new rows):
the change counter alone must tell."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.core.global_ids import global_id
from powermemo_gql.recall.memory_index import MemoryIndex
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.repository import RecallRepository, Scope
from powermemo_gql.recall.search import SearchMode, SearchRequest, SearchService
from powermemo_gql.settings import Settings
from powermemo_gql.users.models import User
from tests.integration.blobs.test_dataloaders import recorded_statements
from tests.integration.recall.conftest import Memory, texts
from tests.support import Api, ProjectHandle

UPDATE_ENTRY = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""
DELETE_ENTRY = "mutation($id: ID!) { deleteProfileEntry(input: {id: $id}) { __typename } }"
UPDATE_EVENT = """
mutation($id: ID!, $summary: String!) {
  updateEvent(input: {id: $id, summary: $summary}) { __typename }
}
"""


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """This module's searching instance: without an embedder (see the docstring)."""
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[Starlette]:
    """Another instance on the same database (its own caches), without an embedder."""
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def _keyword(memory: Memory, query: str, **variables: Any) -> list[str]:
    return texts(await memory.search(query, mode="KEYWORD", **variables))


async def test_entries_written_elsewhere_are_found_by_the_next_search(
    app: Starlette, other: Starlette, project: ProjectHandle
) -> None:
    here = await Memory(app, project.api, "alice").create()
    there = Memory(other, Api(other, project.api_key), "alice")
    await here.entry("hobby", "music", "Plays the violin")
    assert await _keyword(here, "violin guitar") == ["Plays the violin"]  # cached now

    entry_id = await there.entry("hobby", "instrument", "Learning guitar")
    assert sorted(await _keyword(here, "violin guitar")) == ["Learning guitar", "Plays the violin"]

    await there.api.ok(UPDATE_ENTRY, id=entry_id, content="Learning the cello")
    assert await _keyword(here, "guitar") == []
    assert await _keyword(here, "cello") == ["Learning the cello"]
    # A topic only the other instance wrote is known to the filter's check.
    assert await _keyword(here, "cello", topics=["hobby"]) == ["Learning the cello"]

    await there.api.ok(DELETE_ENTRY, id=entry_id)
    assert await _keyword(here, "cello") == []


async def test_the_bm25_document_count_follows_writes_elsewhere(
    app: Starlette, other: Starlette, project: ProjectHandle
) -> None:
    here = await Memory(app, project.api, "bob").create()
    there = Memory(other, Api(other, project.api_key), "bob")
    await here.entry("hobby", "music", "Plays the violin")
    first = (await here.search("violin", mode="KEYWORD"))["hits"][0]["keywordScore"]
    await there.entry("pet", "cat", "Has a cat named Tom")
    second = (await here.search("violin", mode="KEYWORD"))["hits"][0]["keywordScore"]
    assert second > first  # a rarer word among more rows: a higher inverse document frequency


async def test_event_edits_elsewhere_are_found_by_the_next_search(
    app: Starlette, other: Starlette, project: ProjectHandle
) -> None:
    here = await Memory(app, project.api, "carol").create()
    event_id = await here.event("- Went hiking in the Alps")
    assert "Went hiking in the Alps" in await _keyword(here, "hiking")
    there = Api(other, project.api_key)
    await there.ok(
        UPDATE_EVENT, id=global_id("Event", event_id), summary="- Went sailing in Brittany"
    )
    assert await _keyword(here, "hiking") == []
    assert "Went sailing in Brittany" in await _keyword(here, "sailing")


async def test_a_warm_search_reads_the_version_and_the_rows_it_returns(
    app: Starlette, project: ProjectHandle
) -> None:
    """Counts, stale rows and keyword matches come from memory: a search of an unchanged
    user runs one statement for the version, then loads the hits (one per kind found)."""
    memory = await Memory(app, project.api, "dave").create()
    await memory.entry("hobby", "music", "Plays the violin")
    await memory.event("- Went hiking in the Alps")
    resources = memory.resources
    async with resources.sessions() as session:
        user = (await session.scalars(select(User).where(col(User.external_id) == "dave"))).one()
    request = SearchRequest(query="violin hiking", mode=SearchMode.KEYWORD, tags=("x",))
    plain = SearchRequest(query="violin hiking", mode=SearchMode.KEYWORD, topics=("hobby",))

    async def search(request: SearchRequest) -> tuple[list[str], list[RecallKind]]:
        with recorded_statements(app) as statements:
            async with resources.sessions() as session:
                found = await SearchService(session, resources.embedder, resources.vectors).search(
                    user.project_id, user.id, request
                )
        return statements, [hit.kind for hit in found.hits]

    await search(SearchRequest(query="violin hiking", mode=SearchMode.KEYWORD))  # warms it
    statements, kinds = await search(SearchRequest(query="violin hiking", mode=SearchMode.KEYWORD))
    assert sorted(kinds) == sorted([RecallKind.PROFILE, RecallKind.EVENT, RecallKind.FACT])
    assert len(statements) == 1 + 3, statements  # the version; profile, event, fact rows
    assert "memory_vector_versions" in statements[0]
    statements, kinds = await search(request)  # a tag filter: from memory too
    assert kinds == []
    assert len(statements) == 1, statements
    statements, kinds = await search(plain)  # a topic filter reads the project's config
    assert kinds == [RecallKind.PROFILE]
    assert len(statements) == 3, statements


async def test_the_users_searched_longest_ago_are_dropped_past_the_bound(
    app: Starlette, project: ProjectHandle
) -> None:
    resources = Memory(app, project.api, "erin").resources
    ids = {}
    for name in ("erin", "frank"):
        memory = await Memory(app, project.api, name).create()
        await memory.entry("hobby", "music", f"{name} plays the violin")
        async with resources.sessions() as session:
            ids[name] = (
                await session.scalars(select(User).where(col(User.external_id) == name))
            ).one()
    index = MemoryIndex(max_rows=1)  # room for one of the two users (one row each)

    async def get(name: str) -> int:
        """The statements reading a user's memory took (1: cached; more: loaded)."""
        user = ids[name]
        with recorded_statements(app) as statements:
            async with resources.sessions() as session:
                found = await index.get(RecallRepository(session), user.project_id, user.id)
        assert found.count([RecallKind.PROFILE], Scope(user.project_id, user.id)) == 1
        return len(statements)

    assert await get("erin") > 1
    assert await get("erin") == 1
    assert await get("frank") > 1  # erin is dropped
    assert await get("frank") == 1
    assert await get("erin") > 1
