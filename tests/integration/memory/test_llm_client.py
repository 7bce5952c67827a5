"""The production OpenAI client path against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.client import OpenAILLMClient
from powermemo_gql.settings import Settings
from tests.llm_server import Reply, ScriptedLLM


@pytest.fixture
async def clients() -> AsyncIterator[list[OpenAILLMClient]]:
    made: list[OpenAILLMClient] = []
    yield made
    for client in made:
        await client.close()


def _client(llm: ScriptedLLM, made: list[OpenAILLMClient], **overrides: Any) -> OpenAILLMClient:
    values: dict[str, Any] = {
        "llm_base_url": llm.base_url,
        "llm_model": "scripted-model",
        "llm_max_retries": 2,
        "llm_retry_backoff_seconds": 0,
        "llm_timeout_seconds": 5,
    }
    values.update(overrides)
    client = OpenAILLMClient(Settings(**values))
    made.append(client)
    return client


async def test_completion_returns_text_and_usage(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(content="hello", prompt_tokens=42, completion_tokens=3))
    completion = await _client(llm, clients).complete("summarize", "system text", "user text")
    assert (completion.text, completion.input_tokens, completion.output_tokens) == ("hello", 42, 3)
    body = llm.requests[0]["body"]
    assert body["model"] == "scripted-model"
    assert body["messages"] == [
        {"role": "system", "content": "system text"},
        {"role": "user", "content": "user text"},
    ]
    assert llm.purposes() == ["summarize"]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_transient_failures_are_retried(
    clients: list[OpenAILLMClient], llm: ScriptedLLM, status: int
) -> None:
    llm.add(Reply(status=status), Reply(status=status), Reply(content="finally"))
    completion = await _client(llm, clients).complete("extract", "s", "u")
    assert completion.text == "finally"
    assert len(llm.requests) == 3


async def test_retries_are_bounded(clients: list[OpenAILLMClient], llm: ScriptedLLM) -> None:
    llm.add(*[Reply(status=500)] * 10)
    with pytest.raises(LLMUnavailable, match=r"3 attempts: HTTP 500"):
        await _client(llm, clients, llm_max_retries=2).complete("extract", "s", "u")
    assert len(llm.requests) == 3


async def test_a_single_attempt_is_reported_as_such(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(status=500))
    with pytest.raises(LLMUnavailable, match=r"failed after 1 attempt: HTTP 500$"):
        await _client(llm, clients, llm_max_retries=0).complete("extract", "s", "u")


async def test_client_errors_are_not_retried(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(status=400), Reply(content="never reached"))
    with pytest.raises(LLMUnavailable, match="HTTP 400"):
        await _client(llm, clients).complete("extract", "s", "u")
    assert len(llm.requests) == 1


async def test_timeouts_are_retried_then_reported(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(content="late", delay=1.0), Reply(content="late", delay=1.0))
    with pytest.raises(LLMUnavailable, match="timed out"):
        await _client(llm, clients, llm_timeout_seconds=0.2, llm_max_retries=1).complete(
            "x", "s", "u"
        )
    assert len(llm.requests) == 2


async def test_empty_answer_is_retried(clients: list[OpenAILLMClient], llm: ScriptedLLM) -> None:
    llm.add(Reply(content=""), Reply(content="ok"))
    assert (await _client(llm, clients).complete("x", "s", "u")).text == "ok"


async def test_concurrency_is_limited(clients: list[OpenAILLMClient], llm: ScriptedLLM) -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def slow(_request: dict[str, Any]) -> Reply:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        # The reply's delay is served by the server's event loop; count down when it ends.
        threading.Timer(0.2, _done).start()
        return Reply(content="ok", delay=0.2)

    def _done() -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1

    llm.responder = slow
    client = _client(llm, clients, llm_max_concurrency=2)
    results = await asyncio.gather(*(client.complete("x", "s", "u") for _ in range(6)))
    assert [r.text for r in results] == ["ok"] * 6
    assert peak == 2


async def test_backoff_doubles_with_jitter(
    clients: list[OpenAILLMClient], llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    client = _client(llm, clients, llm_retry_backoff_seconds=0.5, llm_max_retries=3)
    monkeypatch.setattr(asyncio, "sleep", record)
    llm.add(Reply(status=503), Reply(status=503), Reply(status=503), Reply(content="ok"))
    assert (await client.complete("x", "s", "u")).text == "ok"
    assert len(waits) == 3
    for wait, base in zip(waits, (0.5, 1.0, 2.0), strict=True):
        assert base * 0.8 <= wait <= base * 1.2
