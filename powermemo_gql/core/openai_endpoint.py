"""What the LLM client and the embedder share about an OpenAI-compatible endpoint: how to
reach it, which failures to retry, how long to wait, and how to word a failure."""

from __future__ import annotations

import random

from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOpenAI,
    InternalServerError,
    RateLimitError,
)
from pydantic import SecretStr

# Failures worth another try: the request may well succeed later.
TRANSIENT_ERRORS = (APITimeoutError, APIConnectionError, RateLimitError, InternalServerError)


def openai_client(api_key: SecretStr | None, base_url: str | None, timeout: float) -> AsyncOpenAI:
    """AsyncOpenAI without its own retries: the callers retry, counting and logging each."""
    return AsyncOpenAI(
        # A local OpenAI-compatible server usually wants no key, but the client needs one.
        api_key=api_key.get_secret_value() if api_key else "unset",
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
    )


def backoff_delay(base_seconds: float, attempt: int) -> float:
    """The wait before retry number `attempt` (1-based): exponential, with jitter."""
    delay = base_seconds * 2.0 ** (attempt - 1)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311  (jitter, not crypto)


def attempts_made(max_retries: int) -> str:
    """E.g. "3 attempts", for the message raised once the retries are spent."""
    return f"{max_retries + 1} attempt" + ("s" if max_retries else "")


def describe_failure(exc: Exception) -> str:
    """A failure in a few words, without the body (it may echo the request)."""
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, APITimeoutError):
        return "timed out"
    return type(exc).__name__
