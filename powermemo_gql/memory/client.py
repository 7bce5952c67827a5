"""The LLM behind the memory pipeline: a Protocol, and its OpenAI-compatible implementation."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from openai import APIStatusError, omit
from openai.types.chat import ChatCompletion

from powermemo_gql.core import openai_endpoint as endpoint
from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.observability.logs import StateChanges, reason_of
from powermemo_gql.observability.metrics import Metrics
from powermemo_gql.settings import Settings

logger = logging.getLogger(__name__)

# Steps that use llm_summary_model when it is set.
SUMMARY_PURPOSES = frozenset({"summarize", "tag_event"})
# Refusals that may mean "no JSON mode here": a bad request, not authentication or routing.
_JSON_REFUSAL_STATUSES = frozenset({400, 415, 422})
_JSON_OBJECT: Any = {"type": "json_object"}


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int


class LLMClient(Protocol):
    async def complete(self, purpose: str, system: str, user: str) -> Completion:
        """One chat completion; raises LLMUnavailable once retries are spent."""
        ...


class _Malformed(Exception):
    """An HTTP 200 whose body is not a usable chat completion."""


class OpenAILLMClient:
    """AsyncOpenAI with our own bounded retries, backoff and concurrency limit.

    JSON mode (llm_json_mode auto) asks for response_format json_object until the endpoint
    refuses it. A refusal is an HTTP 400, 415 or 422 whose body names response_format, or
    any of those to a request with it before one such request was answered (servers word
    it many ways). The refused call is made again at once without it; once that is answered
    (or the body named response_format), no request of this client asks for it again.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._metrics = metrics
        self._state = StateChanges(logger, "the LLM endpoint (readiness probe)")
        self._sleep = sleep  # waits between retries; a test records them instead
        self._client = endpoint.openai_client(
            settings.llm_api_key, settings.llm_base_url, settings.llm_timeout_seconds
        )
        self._model = settings.llm_model
        self._summary_model = settings.llm_summary_model or settings.llm_model
        self._json_mode = settings.llm_json_mode
        self._json_refused = False  # the endpoint has no JSON mode (auto only)
        self._json_answered = False  # a request in JSON mode has been answered
        self.max_retries = settings.llm_max_retries
        self._backoff = settings.llm_retry_backoff_seconds
        self._slots = asyncio.Semaphore(settings.llm_max_concurrency)

    def model_for(self, purpose: str) -> str:
        return self._summary_model if purpose in SUMMARY_PURPOSES else self._model

    async def backoff(self, attempt: int) -> None:
        """Wait before retry number `attempt` (1-based): exponential, with jitter."""
        await self._sleep(endpoint.backoff_delay(self._backoff, attempt))

    async def complete(self, purpose: str, system: str, user: str) -> Completion:
        failure = "no attempt made"
        json_mode = self._json_mode == "on" or (
            self._json_mode == "auto" and not self._json_refused
        )
        fell_back = False  # this call is being made again without JSON mode
        attempt = 0
        while attempt <= self.max_retries:
            if attempt:
                await self.backoff(attempt)
            try:
                completion = await self._create(purpose, system, user, json_mode)
            except endpoint.TRANSIENT_ERRORS as exc:
                failure = endpoint.describe_failure(exc)
            except _Malformed as exc:
                failure = f"malformed answer: {exc}"
            except APIStatusError as exc:  # 4xx other than 429: retrying will not help
                if json_mode and self._refuses_json_mode(exc):
                    logger.warning(
                        "LLM %s: JSON mode refused (%s); asking again without it",
                        purpose,
                        endpoint.describe_failure(exc),
                    )
                    json_mode, fell_back = False, True
                    continue  # the same attempt again, at once
                self._count(purpose, "refused")
                raise LLMUnavailable(
                    f"LLM refused the {purpose} request: {endpoint.describe_failure(exc)}"
                ) from exc
            else:
                self._note_answered(json_mode, fell_back)
                if completion.text:
                    self._count(purpose, "ok", completion)
                    return completion
                failure = "empty answer"
            self._count(purpose, "retry")
            attempt += 1
            logger.warning("LLM %s attempt %d failed: %s", purpose, attempt, failure)
        self._count(purpose, "failed")
        attempts = endpoint.attempts_made(self.max_retries)
        raise LLMUnavailable(f"LLM {purpose} failed after {attempts}: {failure}")

    async def _create(self, purpose: str, system: str, user: str, json_mode: bool) -> Completion:
        """One request. Raises _Malformed for a 200 that is no chat completion."""
        async with self._slots:
            try:
                response: object = await self._client.chat.completions.create(
                    model=self.model_for(purpose),
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    temperature=0,
                    response_format=_JSON_OBJECT if json_mode else omit,
                    extra_headers={"X-Powermemo-Purpose": purpose},
                )
            except json.JSONDecodeError as exc:  # raised for a JSON content type
                raise _Malformed("the body is not valid JSON") from exc
        return _completion_of(response)

    def _refuses_json_mode(self, exc: APIStatusError) -> bool:
        if self._json_mode != "auto" or exc.status_code not in _JSON_REFUSAL_STATUSES:
            return False
        if "response_format" in f"{exc.message} {exc.body}":
            self._json_refused = True  # said outright: no need to see the retry answered
            return True
        return not self._json_answered

    def _note_answered(self, json_mode: bool, fell_back: bool) -> None:
        if json_mode:
            self._json_answered = True
        elif fell_back and not self._json_refused:
            logger.warning("LLM endpoint answers without JSON mode: not asking for it again")
            self._json_refused = True

    def _count(self, purpose: str, outcome: str, completion: Completion | None = None) -> None:
        if self._metrics is None:
            return
        self._metrics.llm_calls.labels(purpose, outcome).inc()
        if completion is not None:
            self._metrics.llm_tokens.labels("input").inc(completion.input_tokens)
            self._metrics.llm_tokens.labels("output").inc(completion.output_tokens)

    async def ping(self) -> bool:
        """Whether the LLM endpoint answers (lists its models), within a few seconds."""
        try:
            await self._client.with_options(timeout=3.0, max_retries=0).models.list()
        except Exception as exc:  # any failure means "not answering"
            self._state.report(False, reason_of(exc))
            return False
        self._state.report(True)
        return True

    async def close(self) -> None:
        await self._client.close()


def _completion_of(response: object) -> Completion:
    """The text and token counts of a chat completion, checked (the client does not).

    Without strict validation the openai client returns the text of a body whose content
    type is not JSON, and builds a ChatCompletion with absent fields from any JSON object.
    """
    if not isinstance(response, ChatCompletion):
        raise _Malformed(
            "the body is not JSON" if isinstance(response, str) else "not a chat completion"
        )
    choices: object = getattr(response, "choices", None)
    if not isinstance(choices, list):
        raise _Malformed("not a chat completion (no choices)")
    if not choices:
        raise _Malformed("no choices")
    message = getattr(choices[0], "message", None)
    content: object = getattr(message, "content", None)
    if content is None:
        raise _Malformed("no message" if message is None else "content is null")
    if not isinstance(content, str):
        raise _Malformed("content is not text")
    usage = getattr(response, "usage", None)
    return Completion(
        text=content,
        input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        output_tokens=getattr(usage, "completion_tokens", 0) or 0,
    )
