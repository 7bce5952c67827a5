"""The openai provider's answers as indexing records them: tokens in llmUsage (per project,
by the live indexer and by reindex alike) and the vectors' length."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlmodel import col

from powermemo_gql.app import create_app
from powermemo_gql.cli_reindex import run_reindex
from powermemo_gql.recall.models import MemoryVector
from tests.conftest import make_settings
from tests.integration.recall.conftest import Memory
from tests.llm_server import DEFAULT_EMBEDDING_DIMENSIONS, ScriptedLLM, running_llm, word_count
from tests.support import ROOT_TOKEN, Api, create_project

USAGE = "{ llmUsage { llmCalls embeddingTexts embeddingTokens } }"
ENTRY_TEXTS = ["interest / food: Vegetarian, loves Ethiopian cuisine", "interest / pets: Has a cat"]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


def _openai(database_url: str, llm: ScriptedLLM) -> dict[str, object]:
    return {
        "embedding_provider": "openai",
        "embedding_base_url": llm.base_url,
        "embedding_model": "scripted-embedder",
        "embedding_dimensions": 8,
    }


async def _write(memory: Memory) -> None:
    await memory.create()
    await memory.entry("interest", "food", "Vegetarian, loves Ethiopian cuisine")
    await memory.entry("interest", "pets", "Has a cat")
    await memory.indexed()


async def test_indexing_counts_the_tokens_the_provider_reports(
    database_url: str, llm: ScriptedLLM
) -> None:
    app = create_app(make_settings(database_url, **_openai(database_url, llm)))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        root = Api(app, ROOT_TOKEN)
        first, second = (
            await create_project(app, root, "one"),
            await create_project(app, root, "two"),
        )
        await _write(Memory(app, first.api, "alice"))
        usage = (await first.api.ok(USAGE))["llmUsage"]
        assert usage == {
            "llmCalls": 0,  # embeddings are not chat completions
            "embeddingTexts": 2,
            "embeddingTokens": word_count(ENTRY_TEXTS),
        }
        assert sorted(t for batch in llm.embedding_inputs() for t in batch) == sorted(ENTRY_TEXTS)
        # Another project's memory cost it nothing.
        assert (await second.api.ok(USAGE))["llmUsage"]["embeddingTokens"] == 0


async def test_reindexing_counts_each_projects_tokens_to_it(
    database_url: str, llm: ScriptedLLM
) -> None:
    plain = create_app(make_settings(database_url))  # no embedder: rows stay unembedded
    async with LifespanManager(plain, startup_timeout=60, shutdown_timeout=60):
        root = Api(plain, ROOT_TOKEN)
        first, second = (
            await create_project(plain, root, "one"),
            await create_project(plain, root, "two"),
        )
        await _write(Memory(plain, first.api, "alice"))
        bob = await Memory(plain, second.api, "bob").create()
        await bob.entry("interest", "sport", "Runs marathons")
        assert (await first.api.ok(USAGE))["llmUsage"]["embeddingTexts"] == 0

        configured = make_settings(database_url, **_openai(database_url, llm))
        assert await run_reindex(configured, None, missing_only=False, stderr=io.StringIO()) == 0
        assert (await first.api.ok(USAGE))["llmUsage"] == {
            "llmCalls": 0,
            "embeddingTexts": 2,
            "embeddingTokens": word_count(ENTRY_TEXTS),
        }
        assert (await second.api.ok(USAGE))["llmUsage"] == {
            "llmCalls": 0,
            "embeddingTexts": 1,
            "embeddingTokens": word_count(["interest / sport: Runs marathons"]),
        }


async def test_the_first_vectors_record_the_length_the_provider_answered(
    database_url: str, llm: ScriptedLLM
) -> None:
    # No embedding_dimensions: the provider's length is learned from its first answer, which
    # the first indexing pass is waiting for; its vectors must record it (not 0), else search
    # would skip them without counting them as waiting.
    options = {**_openai(database_url, llm), "embedding_dimensions": None}
    app = create_app(make_settings(database_url, **options))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        project = await create_project(app, Api(app, ROOT_TOKEN), "one")
        alice = Memory(app, project.api, "alice")
        await _write(alice)
        async with alice.resources.sessions() as session:
            lengths = (await session.scalars(select(col(MemoryVector.dimensions)))).all()
        assert lengths == [DEFAULT_EMBEDDING_DIMENSIONS] * 2
        result = await alice.search("Ethiopian cuisine", mode="VECTOR")
        assert result["keywordOnlyRows"] == 0
        assert len(result["hits"]) == 2
