"""Query vectors are kept per process: the same query text is embedded once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgi_lifespan import LifespanManager

from powermemo_gql.app import create_app
from powermemo_gql.recall.embeddings import OpenAIEmbedder
from powermemo_gql.recall.query_cache import CachedQueryEmbedder
from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.llm_server import ScriptedLLM, bag_of_words_vector, running_llm


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


def _provider(llm: ScriptedLLM) -> dict[str, object]:
    return {
        "embedding_provider": "openai",
        "embedding_base_url": llm.base_url,
        "embedding_model": "scripted-embedder",
        "embedding_dimensions": 8,
    }


async def test_a_query_asked_again_is_not_embedded_again(llm: ScriptedLLM) -> None:
    inner = OpenAIEmbedder(Settings(**_provider(llm)))  # type: ignore[arg-type]
    embedder = CachedQueryEmbedder(inner, size=2)
    try:
        first = await embedder.embed(["does she eat meat"], "query")
        again = await embedder.embed(["does she eat meat"], "query")
        assert again.vectors == first.vectors
        assert first.tokens > 0
        assert again.tokens == 0  # no provider call, so no tokens
        assert llm.embedding_inputs() == [["does she eat meat"]]
        # Indexing always reaches the provider: rows change, their texts are not queries.
        await embedder.embed(["does she eat meat"], "index")
        await embedder.embed(["does she eat meat"], "index")
        assert len(llm.embedding_inputs()) == 3
    finally:
        await embedder.close()


async def test_the_least_recently_used_query_is_dropped_first(llm: ScriptedLLM) -> None:
    embedder = CachedQueryEmbedder(OpenAIEmbedder(Settings(**_provider(llm))), size=2)  # type: ignore[arg-type]
    try:
        for text in ["a cat", "a dog", "a cat", "a bird", "a cat", "a dog"]:
            await embedder.embed([text], "query")
        # "a dog" was the least recently used when "a bird" came: embedded again at the end.
        assert llm.embedding_inputs() == [["a cat"], ["a dog"], ["a bird"], ["a dog"]]
    finally:
        await embedder.close()


@pytest.mark.parametrize(("size", "requests"), [(1000, 1), (0, 2)])
async def test_the_server_keeps_query_vectors_as_configured(
    database_url: str, llm: ScriptedLLM, size: int, requests: int
) -> None:
    settings = make_settings(database_url, embedding_query_cache_size=size, **_provider(llm))
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        embedder = app.state.resources.embedder
        for _ in range(2):
            result = await embedder.embed(["hello world"], "query")
            assert result.vectors[0] == pytest.approx(bag_of_words_vector("hello world", 8))
    assert len(llm.embedding_inputs()) == requests
