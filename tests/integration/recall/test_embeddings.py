"""Embedders: the openai provider against the loopback server, none, local, and start-up errors."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from powermemo_gql import cli
from powermemo_gql.app import create_app
from powermemo_gql.errors import EmbeddingUnavailable
from powermemo_gql.observability.metrics import Metrics
from powermemo_gql.recall.embeddings import (
    Embedder,
    OpenAIEmbedder,
    create_embedder,
)
from powermemo_gql.settings import Settings, SettingsError
from tests.conftest import make_settings
from tests.llm_server import (
    Reply,
    ScriptedLLM,
    bag_of_words_vector,
    embeddings_response,
    running_llm,
    word_count,
)

TEXTS = [f"memory number {n} about topic {n % 3}" for n in range(7)]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@pytest.fixture
async def embedders() -> AsyncIterator[list[Embedder]]:
    made: list[Embedder] = []
    yield made
    for embedder in made:
        await embedder.close()


class Waits:
    """Records the embedder's waits between retries instead of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.seconds.append(delay)


def _openai(
    llm: ScriptedLLM,
    made: list[Embedder],
    metrics: Metrics | None = None,
    waits: Waits | None = None,
    **overrides: Any,
) -> OpenAIEmbedder:
    values: dict[str, Any] = {
        "embedding_provider": "openai",
        "embedding_base_url": llm.base_url,
        "embedding_model": "scripted-embedder",
        "embedding_max_retries": 2,
        "llm_retry_backoff_seconds": 0,
        "embedding_timeout_seconds": 5,
    }
    values.update(overrides)
    embedder = OpenAIEmbedder(Settings(**values), metrics, sleep=waits or Waits())
    made.append(embedder)
    return embedder


def _same_vectors(got: list[list[float]], expected: list[list[float]]) -> bool:
    # pytest.approx compares flat lists only.
    return len(got) == len(expected) and all(
        g == pytest.approx(e) for g, e in zip(got, expected, strict=True)
    )


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


# --- openai provider ---


async def test_texts_are_embedded_in_batches_in_order(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    embedder = _openai(llm, embedders, embedding_batch_size=3)
    result = await embedder.embed(TEXTS, "index")
    # The batches are sent concurrently, so they may arrive in any order.
    assert sorted(llm.embedding_inputs()) == sorted([TEXTS[0:3], TEXTS[3:6], TEXTS[6:7]])
    assert _same_vectors(result.vectors, [bag_of_words_vector(t) for t in TEXTS])
    body = llm.embedding_requests[0]["body"]
    assert (body["model"], body["encoding_format"]) == ("scripted-embedder", "float")
    assert {r["headers"]["x-powermemo-purpose"] for r in llm.embedding_requests} == {"index"}
    assert embedder.model == "openai:scripted-embedder"
    assert embedder.enabled


async def test_tokens_are_summed_over_batches_and_counted_in_metrics(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    metrics = Metrics()
    embedder = _openai(llm, embedders, metrics, embedding_batch_size=2)
    result = await embedder.embed(TEXTS, "query")
    assert len(llm.embedding_requests) == 4
    assert result.tokens == word_count(TEXTS) > 0
    assert metrics.registry.get_sample_value("powermemo_embedding_tokens_total") == result.tokens
    ok = metrics.registry.get_sample_value(
        "powermemo_embedding_calls_total", {"purpose": "query", "outcome": "ok"}
    )
    assert ok == 4


async def test_dimensions_are_sent_when_set(embedders: list[Embedder], llm: ScriptedLLM) -> None:
    embedder = _openai(llm, embedders, embedding_dimensions=16)
    assert embedder.dimensions == 16
    result = await embedder.embed(["vegetarian"], "query")
    assert llm.embedding_requests[0]["body"]["dimensions"] == 16
    assert len(result.vectors[0]) == 16


async def test_without_dimensions_none_is_asked_and_the_first_answer_sets_them(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    embedder = _openai(llm, embedders)
    assert embedder.dimensions == 0
    await embedder.embed(["one text"], "index")
    assert "dimensions" not in llm.embedding_requests[0]["body"]
    assert embedder.dimensions == 64  # the server's default length
    # A later answer of another length is malformed.
    llm.embedding_vectors["short"] = [1.0, 0.0]
    with pytest.raises(EmbeddingUnavailable, match="a vector of length 2, expected 64"):
        await embedder.embed(["short"], "index")


async def test_vectors_are_normalised(embedders: list[Embedder], llm: ScriptedLLM) -> None:
    llm.embedding_vectors["raw"] = [3.0, 4.0, 0.0, 0.0]
    result = await _openai(llm, embedders, embedding_dimensions=4).embed(["raw"], "index")
    assert _same_vectors(result.vectors, [[0.6, 0.8, 0.0, 0.0]])
    assert _norm(result.vectors[0]) == pytest.approx(1.0)


async def test_the_llm_endpoint_and_key_are_used_when_no_embedding_url_is_set(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    embedder = _openai(
        llm, embedders, embedding_base_url=None, llm_base_url=llm.base_url, llm_api_key="k-llm"
    )
    await embedder.embed(["hello"], "index")
    assert llm.embedding_requests[0]["headers"]["authorization"] == "Bearer k-llm"
    # Its own key wins when set.
    own = _openai(llm, embedders, llm_api_key="k-llm", embedding_api_key="k-embed")
    await own.embed(["hello"], "index")
    assert llm.embedding_requests[1]["headers"]["authorization"] == "Bearer k-embed"


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_transient_failures_are_retried_with_backoff(
    embedders: list[Embedder], llm: ScriptedLLM, status: int
) -> None:
    waits = Waits()
    llm.add_embedding_replies(Reply(status=status), Reply(status=status))
    embedder = _openai(llm, embedders, waits=waits, llm_retry_backoff_seconds=0.5)
    result = await embedder.embed(["vegetarian"], "index")
    assert _same_vectors(result.vectors, [bag_of_words_vector("vegetarian")])
    assert len(llm.embedding_requests) == 3
    assert len(waits.seconds) == 2
    for wait, base in zip(waits.seconds, (0.5, 1.0), strict=True):
        assert base * 0.8 <= wait <= base * 1.2


async def test_retries_are_bounded(embedders: list[Embedder], llm: ScriptedLLM) -> None:
    metrics = Metrics()
    llm.add_embedding_replies(*[Reply(status=500)] * 5)
    embedder = _openai(llm, embedders, metrics, embedding_max_retries=2)
    with pytest.raises(EmbeddingUnavailable, match="3 attempts: HTTP 500") as raised:
        await embedder.embed(["a"], "query")
    assert raised.value.code == "EMBEDDING_UNAVAILABLE"
    assert len(llm.embedding_requests) == 3
    failed = metrics.registry.get_sample_value(
        "powermemo_embedding_calls_total", {"purpose": "query", "outcome": "failed"}
    )
    assert failed == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_client_errors_are_not_retried(
    embedders: list[Embedder], llm: ScriptedLLM, status: int
) -> None:
    llm.add_embedding_replies(Reply(status=status))
    with pytest.raises(EmbeddingUnavailable, match=f"refused the index request: HTTP {status}"):
        await _openai(llm, embedders).embed(["a"], "index")
    assert len(llm.embedding_requests) == 1


async def test_a_wrong_length_vector_is_retried_then_reported(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    llm.embedding_vectors["odd"] = [1.0, 0.0, 0.0]
    embedder = _openai(llm, embedders, embedding_dimensions=4, embedding_max_retries=2)
    with pytest.raises(
        EmbeddingUnavailable, match="3 attempts: malformed answer: a vector of length 3, expected 4"
    ):
        await embedder.embed(["fine", "odd"], "index")
    assert len(llm.embedding_requests) == 3


async def test_a_wrong_length_vector_then_a_good_answer_succeeds(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    wrong = embeddings_response([[1.0, 0.0, 0.0]])
    llm.add_embedding_replies(Reply(raw=json.dumps(wrong)))
    result = await _openai(llm, embedders, embedding_dimensions=4).embed(["x"], "index")
    assert len(result.vectors[0]) == 4
    assert len(llm.embedding_requests) == 2


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("not json at all", "text/plain"),
        ('{"data": [{"index": 0, "embedding": [1.0', "application/json"),  # cut off
        (json.dumps(embeddings_response([])), "application/json"),  # no vector for the text
        (json.dumps(embeddings_response([[0.1] * 64, [0.1] * 64])), "application/json"),
        (json.dumps(embeddings_response([[0.0] * 64])), "application/json"),  # zero vector
        (json.dumps(embeddings_response([["a"] * 64])), "application/json"),  # not numbers
        (json.dumps({"object": "list"}), "application/json"),  # no data
    ],
)
async def test_malformed_answers_are_retried(
    embedders: list[Embedder], llm: ScriptedLLM, raw: str, content_type: str
) -> None:
    llm.add_embedding_replies(Reply(raw=raw, content_type=content_type))
    result = await _openai(llm, embedders).embed(["meat"], "query")
    assert _same_vectors(result.vectors, [bag_of_words_vector("meat")])
    assert len(llm.embedding_requests) == 2


async def test_timeouts_are_retried_then_reported(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    llm.add_embedding_replies(Reply(delay=1.0), Reply(delay=1.0))
    embedder = _openai(llm, embedders, embedding_timeout_seconds=0.2, embedding_max_retries=1)
    with pytest.raises(EmbeddingUnavailable, match="2 attempts: timed out"):
        await embedder.embed(["slow"], "index")
    assert len(llm.embedding_requests) == 2


async def test_concurrency_is_limited(embedders: list[Embedder], llm: ScriptedLLM) -> None:
    llm.add_embedding_replies(*[Reply(delay=0.3)] * 6)
    embedder = _openai(llm, embedders, embedding_batch_size=1, embedding_max_concurrency=2)
    result = await embedder.embed(TEXTS[:6], "index")
    assert len(result.vectors) == 6
    assert len(llm.embedding_requests) == 6
    # Batches run concurrently, but never more than the limit at once.
    assert llm.embeddings_in_flight_peak == 2


async def test_a_failed_batch_fails_the_whole_call(
    embedders: list[Embedder], llm: ScriptedLLM
) -> None:
    llm.add_embedding_replies(Reply(), Reply(status=400))
    embedder = _openai(llm, embedders, embedding_batch_size=1, embedding_max_concurrency=1)
    with pytest.raises(EmbeddingUnavailable, match="HTTP 400"):
        await embedder.embed(["one", "two", "three"], "index")


async def test_no_texts_need_no_request(embedders: list[Embedder], llm: ScriptedLLM) -> None:
    result = await _openai(llm, embedders).embed([], "index")
    assert (result.vectors, result.tokens) == ([], 0)
    assert llm.embedding_requests == []


# --- none provider and start-up errors ---


async def test_none_is_the_default_and_means_keyword_only() -> None:
    embedder = create_embedder(Settings())
    assert (embedder.enabled, embedder.model, embedder.dimensions) == (False, "", 0)
    with pytest.raises(EmbeddingUnavailable, match="embedding_provider none"):
        await embedder.embed(["anything"], "query")
    await embedder.close()


def test_openai_without_a_model_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="embedding_model is not set"):
        create_embedder(Settings(embedding_provider="openai"))


def test_local_without_the_extra_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules is how Python says "this module cannot be imported".
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(SettingsError, match=r"local extra is not installed .*\[local\]"):
        create_embedder(Settings(embedding_provider="local"))


def test_local_refuses_another_model() -> None:
    with pytest.raises(SettingsError, match="embedding_model must be empty"):
        create_embedder(Settings(embedding_provider="local", embedding_model="bge-small"))


@pytest.mark.parametrize("command", ["serve", "worker", "reindex"])
def test_the_cli_reports_a_provider_error_in_one_line(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml
    monkeypatch.setenv("POWERMEMO_EMBEDDING_PROVIDER", "openai")
    monkeypatch.delenv("POWERMEMO_EMBEDDING_MODEL", raising=False)
    monkeypatch.setenv("POWERMEMO_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/x.db")
    assert cli.main([command]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "powermemo-gql:" in line]
    assert lines[-1] == (
        "powermemo-gql: configuration error: embedding_provider is openai but "
        "embedding_model is not set (e.g. text-embedding-3-small)"
    )
    assert "Traceback" not in capsys.readouterr().err


async def test_the_app_holds_the_configured_embedder(database_url: str, llm: ScriptedLLM) -> None:
    settings = make_settings(
        database_url,
        embedding_provider="openai",
        embedding_base_url=llm.base_url,
        embedding_model="scripted-embedder",
        embedding_dimensions=8,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        embedder = app.state.resources.embedder
        assert embedder.model == "openai:scripted-embedder"
        result = await embedder.embed(["hello world"], "query")
        assert _same_vectors(result.vectors, [bag_of_words_vector("hello world", 8)])


async def test_the_app_defaults_to_no_embedder(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        assert app.state.resources.embedder.enabled is False
