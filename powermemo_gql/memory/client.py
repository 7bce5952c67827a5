"""The LLM behind the memory pipeline: a Protocol, and its OpenAI-compatible implementation."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Protocol

from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOpenAI,
    InternalServerError,
    RateLimitError,
)

from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.observability.metrics import Metrics
from powermemo_gql.settings import Settings

logger = logging.getLogger(__name__)

# Failures worth another try: the request may well succeed later.
_TRANSIENT = (APITimeoutError, APIConnectionError, RateLimitError, InternalServerError)


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int


class LLMClient(Protocol):
    async def complete(self, purpose: str, system: str, user: str) -> Completion:
        """One chat completion; raises LLMUnavailable once retries are spent."""
        ...


class OpenAILLMClient:
    """AsyncOpenAI with our own bounded retries, backoff and concurrency limit."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        key = settings.llm_api_key
        self._client = AsyncOpenAI(
            # A local OpenAI-compatible server usually wants no key, but the client needs one.
            api_key=key.get_secret_value() if key else "unset",
            base_url=settings.llm_base_url,
            timeout=settings.llm_timeout_seconds,
            max_retries=0,  # retried below, where the attempts are counted and logged
        )
        self._model = settings.llm_model
        self.max_retries = settings.llm_max_retries
        self._backoff = settings.llm_retry_backoff_seconds
        self._slots = asyncio.Semaphore(settings.llm_max_concurrency)

    async def backoff(self, attempt: int) -> None:
        """Wait before retry number `attempt` (1-based): exponential, with jitter."""
        delay = self._backoff * 2 ** (attempt - 1)
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311  (jitter, not crypto)

    async def complete(self, purpose: str, system: str, user: str) -> Completion:
        failure = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                await self.backoff(attempt)
            try:
                async with self._slots:
                    response = await self._client.chat.completions.create(
                        model=self._model,
                        messages=[
                            {"role": "system", "content": system},
                            {"role": "user", "content": user},
                        ],
                        temperature=0,
                        extra_headers={"X-Powermemo-Purpose": purpose},
                    )
            except _TRANSIENT as exc:
                self._count(purpose, "retry")
                failure = _describe(exc)
                logger.warning("LLM %s attempt %d failed: %s", purpose, attempt + 1, failure)
                continue
            except APIStatusError as exc:  # 4xx other than 429: retrying will not help
                self._count(purpose, "refused")
                raise LLMUnavailable(
                    f"LLM refused the {purpose} request: {_describe(exc)}"
                ) from exc
            text = response.choices[0].message.content if response.choices else None
            if not text:
                failure = "empty answer"
                logger.warning("LLM %s attempt %d: empty answer", purpose, attempt + 1)
                continue
            usage = response.usage
            completion = Completion(
                text=text,
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            )
            self._count(purpose, "ok", completion)
            return completion
        self._count(purpose, "failed")
        attempts = f"{self.max_retries + 1} attempt" + ("s" if self.max_retries else "")
        raise LLMUnavailable(f"LLM {purpose} failed after {attempts}: {failure}")

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
        except Exception:  # any failure means "not answering"; the reason is logged
            logger.warning("LLM endpoint does not answer", exc_info=True)
            return False
        return True

    async def close(self) -> None:
        await self._client.close()


def _describe(exc: Exception) -> str:
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, APITimeoutError):
        return "timed out"
    return type(exc).__name__
