"""The production OpenAI client path against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.client import OpenAILLMClient
from powermemo_gql.settings import Settings
from tests.llm_server import Reply, ScriptedLLM, chat_completion


@pytest.fixture
async def clients() -> AsyncIterator[list[OpenAILLMClient]]:
    made: list[OpenAILLMClient] = []
    yield made
    for client in made:
        await client.close()


def _client(
    llm: ScriptedLLM,
    made: list[OpenAILLMClient],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    **overrides: Any,
) -> OpenAILLMClient:
    values: dict[str, Any] = {
        "llm_base_url": llm.base_url,
        "llm_model": "scripted-model",
        "llm_max_retries": 2,
        "llm_retry_backoff_seconds": 0,
        "llm_timeout_seconds": 5,
    }
    values.update(overrides)
    client = OpenAILLMClient(Settings(**values), sleep=sleep)
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
    # JSON mode off: in auto, a 400 to the first JSON-mode request is taken as its refusal.
    with pytest.raises(LLMUnavailable, match="HTTP 400"):
        await _client(llm, clients, llm_json_mode="off").complete("extract", "s", "u")
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
    delay = 0.2
    arrivals: list[float] = []
    lock = threading.Lock()

    def slow(_request: dict[str, Any]) -> Reply:
        with lock:
            arrivals.append(time.monotonic())
        return Reply(content="ok", delay=delay)

    llm.responder = slow
    client = _client(llm, clients, llm_max_concurrency=2)
    results = await asyncio.gather(*(client.complete("x", "s", "u") for _ in range(6)))
    assert [r.text for r in results] == ["ok"] * 6
    # Each request is answered `delay` after it arrived at the soonest, and a client slot is
    # freed only by an answer: requests in flight at once are those arriving within `delay`
    # of each other. (Counting down on a timer instead raced with the server under load.)
    peak = max(sum(1 for other in arrivals if start <= other < start + delay) for start in arrivals)
    assert peak == 2


async def test_backoff_doubles_with_jitter(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    # The client's own sleep is recorded: patching asyncio.sleep would stall the server too.
    client = _client(llm, clients, sleep=record, llm_retry_backoff_seconds=0.5, llm_max_retries=3)
    llm.add(Reply(status=503), Reply(status=503), Reply(status=503), Reply(content="ok"))
    assert (await client.complete("x", "s", "u")).text == "ok"
    assert len(waits) == 3
    for wait, base in zip(waits, (0.5, 1.0, 2.0), strict=True):
        assert base * 0.8 <= wait <= base * 1.2


# --- JSON mode ---

REFUSAL = Reply(status=400, content="Unrecognized request argument supplied: response_format")


async def test_json_mode_is_asked_for_by_default(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(content="{}"), Reply(content="{}"))
    client = _client(llm, clients)
    await client.complete("extract", "s", "u")
    await client.complete("merge", "s", "u")
    assert llm.json_mode_sent() == [True, True]


async def test_json_mode_off_never_asks_for_it(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(content="{}"))
    await _client(llm, clients, llm_json_mode="off").complete("extract", "s", "u")
    assert llm.json_mode_sent() == [False]
    assert "response_format" not in llm.requests[0]["body"]


async def test_auto_falls_back_once_and_remembers_a_refusal_naming_response_format(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.refuse_response_format = REFUSAL
    llm.add(Reply(content="first"), Reply(content="second"))
    client = _client(llm, clients)
    assert (await client.complete("extract", "s", "u")).text == "first"
    assert (await client.complete("merge", "s", "u")).text == "second"
    # The refused request, the same call again without it, then no more asking.
    assert llm.json_mode_sent() == [True, False, False]
    assert llm.purposes() == ["extract", "extract", "merge"]


async def test_auto_takes_any_bad_request_to_the_first_json_request_as_a_refusal(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    # Servers word it their own way: a 422 that does not name the parameter.
    llm.refuse_response_format = Reply(status=422, content="extra fields not permitted")
    llm.add(Reply(content="ok"), Reply(content="again"))
    client = _client(llm, clients)
    assert (await client.complete("extract", "s", "u")).text == "ok"
    assert (await client.complete("extract", "s", "u")).text == "again"
    assert llm.json_mode_sent() == [True, False, False]


async def test_a_bad_request_after_json_mode_worked_is_a_plain_refusal(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(content="ok"), Reply(status=400, content="context too long"), Reply(content="x"))
    client = _client(llm, clients)
    await client.complete("extract", "s", "u")
    with pytest.raises(LLMUnavailable, match="refused the extract request: HTTP 400"):
        await client.complete("extract", "s", "u")
    assert llm.json_mode_sent() == [True, True]


async def test_a_refusal_that_persists_without_json_mode_is_reported_and_not_remembered(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(status=400), Reply(status=400), Reply(content="ok"))
    client = _client(llm, clients)
    with pytest.raises(LLMUnavailable, match="HTTP 400"):
        await client.complete("extract", "s", "u")
    # The 400 was not about JSON mode: the next call still asks for it.
    await client.complete("extract", "s", "u")
    assert llm.json_mode_sent() == [True, False, True]


async def test_auth_and_routing_errors_are_not_taken_for_a_json_mode_refusal(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.add(Reply(status=404, content="model not found"), Reply(content="never reached"))
    with pytest.raises(LLMUnavailable, match="HTTP 404"):
        await _client(llm, clients).complete("extract", "s", "u")
    assert len(llm.requests) == 1


async def test_json_mode_on_makes_a_refusal_an_error(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.refuse_response_format = REFUSAL
    llm.add(Reply(content="never reached"))
    with pytest.raises(LLMUnavailable, match="refused the extract request: HTTP 400"):
        await _client(llm, clients, llm_json_mode="on").complete("extract", "s", "u")
    assert llm.json_mode_sent() == [True]


# --- malformed HTTP answers ---

MALFORMED = {
    "a non-JSON body": (
        Reply(raw="<html>Bad gateway</html>", content_type="text/html"),
        "the body is not JSON",
    ),
    "a non-JSON body typed as JSON": (
        Reply(raw="<html>oops</html>"),
        "the body is not valid JSON",
    ),
    "a truncated body": (
        Reply(raw=json.dumps(chat_completion("hi"))[:60]),
        "the body is not valid JSON",
    ),
    "JSON that is not a chat completion": (
        Reply(raw='{"status": "ok"}'),
        "not a chat completion (no choices)",
    ),
    "a JSON list": (Reply(raw="[1, 2]"), "not a chat completion"),
    "no choices": (Reply(raw=json.dumps({**chat_completion("x"), "choices": []})), "no choices"),
    "a null content": (Reply(raw=json.dumps(chat_completion(None))), "content is null"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
async def test_a_malformed_answer_is_retried(
    clients: list[OpenAILLMClient], llm: ScriptedLLM, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply, reason = MALFORMED[case]
    llm.add(reply, Reply(content="fine"))
    assert (await _client(llm, clients).complete("extract", "s", "u")).text == "fine"
    assert len(llm.requests) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"malformed answer: {reason}" in w for w in warnings), warnings


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
async def test_malformed_answers_end_as_llm_unavailable_with_the_reason(
    clients: list[OpenAILLMClient], llm: ScriptedLLM, case: str
) -> None:
    reply, reason = MALFORMED[case]
    llm.add(reply, reply, reply, Reply(content="never reached"))
    with pytest.raises(LLMUnavailable) as info:
        await _client(llm, clients, llm_max_retries=2).complete("extract", "s", "u")
    assert info.value.code == "LLM_UNAVAILABLE"
    assert info.value.message == f"LLM extract failed after 3 attempts: malformed answer: {reason}"
    assert len(llm.requests) == 3


# --- a model per step ---


async def test_summary_steps_use_the_summary_model_and_the_rest_the_main_one(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.responder = lambda _request: Reply(content="{}")
    client = _client(llm, clients, llm_model="big", llm_summary_model="small")
    for purpose in ("summarize", "extract", "merge", "organize", "shorten", "tag_event"):
        await client.complete(purpose, "s", "u")
    assert llm.models() == ["small", "big", "big", "big", "big", "small"]


async def test_without_a_summary_model_every_step_uses_the_main_one(
    clients: list[OpenAILLMClient], llm: ScriptedLLM
) -> None:
    llm.responder = lambda _request: Reply(content="{}")
    client = _client(llm, clients, llm_model="big", llm_summary_model="")
    await client.complete("summarize", "s", "u")
    await client.complete("extract", "s", "u")
    assert llm.models() == ["big", "big"]
