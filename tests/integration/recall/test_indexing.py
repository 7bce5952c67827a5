"""Indexing after commit: what is embedded, by which model, and that a failing embedder
never blocks or loses a write (rows wait, unembedded, and are embedded on a later pass)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.recall.models import MemoryVector
from powermemo_gql.settings import Settings
from tests.integration.recall.conftest import Memory, texts
from tests.recall_support import WordEmbedder
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project, raw_uuid

UPDATE_ENTRY = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""


async def _vectors(memory: Memory) -> dict[str, MemoryVector]:
    async with memory.resources.sessions() as session:
        rows = (await session.scalars(select(MemoryVector))).all()
    return {f"{row.kind}:{row.target_id}": row for row in rows}


async def _entry(memory: Memory, entry_id: str) -> ProfileEntry:
    async with memory.resources.sessions() as session:
        return (
            await session.scalars(
                select(ProfileEntry).where(col(ProfileEntry.id) == raw_uuid(entry_id))
            )
        ).one()


async def test_entries_and_events_are_embedded_after_commit(
    app: Starlette, project: ProjectHandle, embedder: WordEmbedder
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    entry_id = await alice.entry("interest", "food", "Vegetarian")
    event_id = await alice.event("- Went hiking in the Alps\n- Bought new boots")
    await alice.indexed()

    vectors = await _vectors(alice)
    assert sorted(key.split(":")[0] for key in vectors) == ["event", "fact", "fact", "profile"]
    assert {(v.model, v.dimensions) for v in vectors.values()} == {("fake:words-v1", 256)}
    assert f"event:{event_id}" in vectors
    assert (await _entry(alice, entry_id)).embedded_model == "fake:words-v1"
    assert all(purpose == "index" for purpose, _ in embedder.calls)
    first = vectors[f"profile:{raw_uuid(entry_id)}"].vector

    # A changed entry is embedded again, from its new content.
    await alice.api.ok(UPDATE_ENTRY, id=entry_id, content="Eats fish on Fridays")
    await alice.indexed()
    assert (await _vectors(alice))[f"profile:{raw_uuid(entry_id)}"].vector != first
    assert embedder.calls[-1] == ("index", ["interest / food: Eats fish on Fridays"])


async def test_a_failing_embedder_loses_no_write_and_is_retried(
    app: Starlette, project: ProjectHandle, embedder: WordEmbedder
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    embedder.failing = True
    entry_id = await alice.entry("interest", "food", "Vegetarian, loves Ethiopian cuisine")
    await alice.event("- Went hiking in the Alps")
    await alice.indexed()
    assert (await _entry(alice, entry_id)).embedded_model is None
    assert await _vectors(alice) == {}

    # Searching still works, by keyword, and says why.
    down = await alice.search("Ethiopian")
    assert down["mode"] == "KEYWORD"
    assert down["fallback"] == "EMBEDDING_UNAVAILABLE"
    assert texts(down) == ["Vegetarian, loves Ethiopian cuisine"]

    embedder.failing = False
    assert await alice.resources.indexer.index_waiting() == 3  # entry, event, its fact
    assert (await _entry(alice, entry_id)).embedded_model == "fake:words-v1"
    back = await alice.search("Does she eat meat?")
    assert back["mode"] == "HYBRID"
    assert back["keywordOnlyRows"] == 0
    assert texts(back)[0] == "Vegetarian, loves Ethiopian cuisine"


async def test_without_an_embedder_search_is_keyword_only(
    settings: Settings, project: ProjectHandle
) -> None:
    # A second app on the same database, with the default (none) embedder.
    plain = create_app(settings)
    async with LifespanManager(plain, startup_timeout=60, shutdown_timeout=60):
        other = await create_project(plain, Api(plain, ROOT_TOKEN), "plain")
        alice = await Memory(plain, other.api, "alice").create()
        await alice.entry("interest", "food", "Vegetarian, loves Ethiopian cuisine")
        await alice.indexed()
        result = await alice.search("ethiopian food")
        assert result["mode"] == "KEYWORD"
        assert result["fallback"] == "NO_EMBEDDER"
        assert result["reason"]
        assert result["model"] is None
        assert result["keywordOnlyRows"] is None
        [hit] = result["hits"]
        assert hit["keywordRank"] == 1
        assert hit["vectorRank"] is None
        assert (await alice.search("Does she eat meat?"))["hits"] == []


async def _app_with(settings: Settings, embedder: WordEmbedder) -> AsyncIterator[Starlette]:
    application = create_app(settings, embedder=embedder)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def test_vectors_of_another_model_are_not_used(
    app: Starlette, project: ProjectHandle, settings: Settings
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    await alice.entry("interest", "food", "Vegetarian, loves Ethiopian cuisine")
    await alice.entry("interest", "pets", "Has a cat named Miso")
    await alice.indexed()

    # The same database, now served with another embedding model.
    newer = WordEmbedder(model="fake:words-v2", dimensions=128)
    async for second in _app_with(settings, newer):
        again = Memory(second, Api(second, project.api_key), "alice")
        stale = await again.search("Does she eat meat? cat")
        assert stale["mode"] == "HYBRID"
        assert stale["model"] == "fake:words-v2"
        assert stale["keywordOnlyRows"] == 2
        # Found by keyword only: no vector of the old model is compared.
        assert texts(stale) == ["Has a cat named Miso"]
        assert stale["hits"][0]["vectorRank"] is None

        assert await again.resources.indexer.index_waiting() == 2
        fresh = await again.search("Does she eat meat? cat")
        assert fresh["keywordOnlyRows"] == 0
        assert {h["vectorRank"] for h in fresh["hits"]} == {1, 2}
        async with again.resources.sessions() as session:
            models = set((await session.scalars(select(col(MemoryVector.model)))).all())
        assert models == {"fake:words-v2"}


async def test_search_compares_the_vectors_of_now_not_of_its_last_read(
    app: Starlette, project: ProjectHandle, embedder: WordEmbedder
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    entry_id = await alice.entry("interest", "food", "Vegetarian")
    await alice.entry("interest", "pets", "Has a cat")
    await alice.indexed()
    before = await alice.search("guitar music", mode="VECTOR")  # the user's vectors read
    assert len(before["hits"]) == 2

    embedder.failing = True  # (for indexing; the query's embedding is asked for below)
    await alice.api.ok(UPDATE_ENTRY, id=entry_id, content="Plays guitar music")
    await alice.indexed()
    embedder.failing = False
    # Changed, not yet embedded again: its old vector is not compared.
    stale = await alice.search("guitar music", mode="VECTOR")
    assert stale["keywordOnlyRows"] == 1
    assert texts(stale) == ["Has a cat"]

    assert await alice.resources.indexer.index_waiting() == 1
    after = await alice.search("guitar music", mode="VECTOR")
    assert after["keywordOnlyRows"] == 0
    assert texts(after)[0] == "Plays guitar music"
    assert after["hits"][0]["similarity"] > 0.5
