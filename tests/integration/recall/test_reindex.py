"""Reindexing (`powermemo-gql reindex`): after a model change search stays keyword-only for
what is not reindexed, never comparing vectors of two models; reindexing embeds what is
missing or other, resumes after an interruption, and never stores the vector of a row's old
text."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql import cli
from powermemo_gql.app import create_app
from powermemo_gql.cli_reindex import run_reindex
from powermemo_gql.errors import EmbeddingUnavailable
from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.recall import reindex as reindex_module
from powermemo_gql.recall.embeddings import Embeddings
from powermemo_gql.recall.index import pack
from powermemo_gql.recall.models import MemoryVector
from powermemo_gql.recall.reindex import Reindexer
from powermemo_gql.settings import Settings
from powermemo_gql.users.models import User
from tests.conftest import make_settings
from tests.integration.recall.conftest import Memory, texts
from tests.llm_server import ScriptedLLM, running_llm
from tests.recall_support import WordEmbedder
from tests.support import Api, ProjectHandle

UPDATE_ENTRY = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""


class HookedEmbedder(WordEmbedder):
    """A word embedder that runs `hook` before answering its next `index` call (once), or
    fails every call after `fail_after` answered calls."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.hook: Callable[[], Awaitable[None]] | None = None
        self.fail_after: int | None = None
        self.answered = 0

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        if self.hook is not None and purpose == "index":
            hook, self.hook = self.hook, None
            await hook()
        if self.fail_after is not None and self.answered >= self.fail_after:
            raise EmbeddingUnavailable("the test embedder stopped")
        self.answered += 1
        return await super().embed(texts, purpose)


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@asynccontextmanager
async def _serve(settings: Settings, embedder: WordEmbedder) -> AsyncIterator[Starlette]:
    application = create_app(settings, embedder=embedder)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def _project_id(memory: Memory) -> uuid.UUID:
    async with memory.resources.sessions() as session:
        user = (
            await session.scalars(select(User).where(col(User.external_id) == memory.user))
        ).one()
        return user.project_id


async def _vectors(memory: Memory) -> list[MemoryVector]:
    async with memory.resources.sessions() as session:
        return list((await session.scalars(select(MemoryVector))).all())


async def _marks(memory: Memory) -> dict[str, str | None]:
    async with memory.resources.sessions() as session:
        rows = (await session.scalars(select(ProfileEntry))).all()
        return {row.content: row.embedded_model for row in rows}


async def _alice(app: Starlette, project: ProjectHandle) -> Memory:
    alice = await Memory(app, project.api, "alice").create()
    await alice.entry("interest", "food", "Vegetarian, loves Ethiopian cuisine")
    await alice.entry("interest", "pets", "Has a cat named Miso")
    await alice.event("- Went hiking in the Alps")  # an event and its one fact
    await alice.indexed()
    return alice


async def test_after_a_model_change_search_is_keyword_only_until_reindexed(
    app: Starlette,
    project: ProjectHandle,
    make_project: Callable[[str], Awaitable[ProjectHandle]],
    settings: Settings,
) -> None:
    await _alice(app, project)
    other = await make_project("other")
    bob = await Memory(app, other.api, "bob").create()
    await bob.entry("interest", "food", "Loves steak")
    await bob.indexed()

    newer = WordEmbedder(model="fake:words-v2", dimensions=128)
    async with _serve(settings, newer) as second:
        again = Memory(second, Api(second, project.api_key), "alice")
        # Nothing of the old model is compared: the meaning-only query finds nothing, and
        # the result says how many rows were searched by keyword only.
        vector_only = await again.search("Does she eat meat?", mode="VECTOR")
        assert vector_only["hits"] == []
        assert vector_only["model"] == "fake:words-v2"
        assert vector_only["keywordOnlyRows"] == 4
        hybrid = await again.search("Does she eat meat? cat")
        assert texts(hybrid) == ["Has a cat named Miso"]
        assert hybrid["hits"][0]["vectorRank"] is None

        steps: list[tuple[int, int]] = []
        report = await Reindexer(again.resources.sessions, newer).run(
            await _project_id(again), progress=lambda done, total: steps.append((done, total))
        )
        assert (report.total, report.embedded, report.changed) == (4, 4, 0)
        assert steps[0] == (0, 4)
        assert steps[-1] == (4, 4)

        fresh = await again.search("Does she eat meat?", mode="VECTOR")
        assert fresh["keywordOnlyRows"] == 0
        assert texts(fresh)[0] == "Vegetarian, loves Ethiopian cuisine"
        assert (await again.search("Does she eat meat? cat"))["mode"] == "HYBRID"
        by_model = {(v.model, v.dimensions) for v in await _vectors(again)}
        assert by_model == {("fake:words-v2", 128), ("fake:words-v1", 256)}
        # The other project was left alone.
        assert (await _marks(again))["Loves steak"] == "fake:words-v1"

        # A second run has nothing left to do and asks the provider nothing.
        calls = len(newer.calls)
        assert (await Reindexer(again.resources.sessions, newer).run()).embedded == 1  # bob
        assert len(newer.calls) == calls + 1
        assert (await Reindexer(again.resources.sessions, newer).run()).total == 0
        assert len(newer.calls) == calls + 1


async def test_an_interrupted_reindex_continues_where_it_stopped(
    app: Starlette, project: ProjectHandle, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    for n in range(5):
        await alice.entry("interest", f"topic{n}", f"Likes thing number {n}")
    await alice.indexed()
    monkeypatch.setattr(reindex_module, "BATCH", 2)

    newer = HookedEmbedder(model="fake:words-v2")
    newer.fail_after = 2  # two batches of two, then the provider is gone
    async with _serve(settings, newer) as second:
        again = Memory(second, Api(second, project.api_key), "alice")
        with pytest.raises(EmbeddingUnavailable):
            await Reindexer(again.resources.sessions, newer).run()
        marks = await _marks(again)
        # The two batches stored before the failure stay stored.
        assert sorted(str(m) for m in marks.values()) == ["fake:words-v1"] + ["fake:words-v2"] * 4

        newer.fail_after = None
        before = len(newer.calls)
        report = await Reindexer(again.resources.sessions, newer).run()
        assert (report.total, report.embedded) == (1, 1)
        # Only the row the first run did not reach was embedded again.
        [(purpose, sent)] = newer.calls[before:]
        assert purpose == "index"
        assert len(sent) == 1
        assert set((await _marks(again)).values()) == {"fake:words-v2"}


async def test_a_row_edited_during_reindex_never_gets_its_old_texts_vector(
    app: Starlette, project: ProjectHandle, settings: Settings
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    entry_id = await alice.entry("interest", "music", "Plays the violin")
    await alice.indexed()

    newer = HookedEmbedder(model="fake:words-v2")
    async with _serve(settings, newer) as second:
        again = Memory(second, Api(second, project.api_key), "alice")

        async def edit() -> None:  # committed while reindex waits for the provider
            await again.api.ok(UPDATE_ENTRY, id=entry_id, content="Plays the drums")

        newer.hook = edit
        report = await Reindexer(again.resources.sessions, newer).run()
        assert (report.embedded, report.changed) == (0, 1)
        await again.indexed()  # the live indexer embeds the new text
        [vector] = await _vectors(again)
        expected = newer.vector("interest / music: Plays the drums")
        assert vector.model == "fake:words-v2"
        assert vector.vector == pack(expected)


async def test_missing_only_keeps_vectors_of_other_models(
    app: Starlette, project: ProjectHandle, settings: Settings, embedder: WordEmbedder
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    await alice.entry("interest", "food", "Vegetarian")
    await alice.indexed()
    embedder.failing = True
    await alice.entry("interest", "pets", "Has a cat")
    await alice.indexed()

    newer = WordEmbedder(model="fake:words-v2")
    report = await Reindexer(alice.resources.sessions, newer).run(missing_only=True)
    assert (report.total, report.embedded) == (1, 1)
    assert await _marks(alice) == {"Vegetarian": "fake:words-v1", "Has a cat": "fake:words-v2"}


async def test_vectors_of_another_length_are_made_again(
    app: Starlette, project: ProjectHandle, settings: Settings
) -> None:
    alice = await _alice(app, project)
    resized = WordEmbedder(dimensions=64)  # the same model name, other embedding_dimensions
    report = await Reindexer(alice.resources.sessions, resized).run()
    assert (report.resized, report.embedded) == (4, 4)
    assert {(v.model, v.dimensions) for v in await _vectors(alice)} == {("fake:words-v1", 64)}


async def test_the_command_embeds_through_the_configured_provider(
    app: Starlette, project: ProjectHandle, database_url: str, llm: ScriptedLLM
) -> None:
    await _alice(app, project)
    configured = make_settings(
        database_url,
        embedding_provider="openai",
        embedding_base_url=llm.base_url,
        embedding_model="scripted-embedder",
    )
    err = io.StringIO()
    assert await run_reindex(configured, project.name, missing_only=False, stderr=err) == 0
    lines = err.getvalue().splitlines()
    assert lines[0] == "reindex: 0/4 (0%)"
    assert lines[-2] == "reindex: 4/4 (100%)"
    assert lines[-1] == "reindex: 4 embedded with openai:scripted-embedder"
    assert sum(len(inputs) for inputs in llm.embedding_inputs()) == 1 + 4  # a length probe

    err = io.StringIO()
    assert await run_reindex(configured, "nope", missing_only=False, stderr=err) == 1
    assert err.getvalue() == "powermemo-gql: Project 'nope' not found\n"


def test_the_command_refuses_without_a_provider(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml
    monkeypatch.setenv("POWERMEMO_DATABASE_URL", database_url)
    monkeypatch.setenv("POWERMEMO_EMBEDDING_PROVIDER", "none")
    assert cli.main(["reindex", "--project", "any", "--missing-only"]) == 1
    assert capsys.readouterr().err == (
        "powermemo-gql: nothing to embed: embedding_provider is none\n"
    )
