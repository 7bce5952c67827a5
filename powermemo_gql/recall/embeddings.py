"""The Embedder protocol (the shared contract of docs/recall.md). Providers come with the
embeddings part; until then only NoEmbedder, which makes search keyword-only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]  # one per input text, L2-normalised, len == dimensions
    tokens: int  # input tokens the provider counted (0 when unknown/local)


class Embedder(Protocol):
    @property
    def model(self) -> str: ...  # recorded with every vector; "" for the `none` provider

    @property
    def dimensions(self) -> int: ...  # 0 for `none`

    @property
    def enabled(self) -> bool: ...  # False for `none`: search is keyword-only

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        """purpose: "index" or "query"; raises EmbeddingUnavailable once retries are spent."""
        ...

    async def close(self) -> None: ...


class NoEmbedder:
    """The `none` provider: nothing is embedded, search is keyword-only."""

    @property
    def model(self) -> str:
        return ""

    @property
    def dimensions(self) -> int:
        return 0

    @property
    def enabled(self) -> bool:
        return False

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        return Embeddings(vectors=[[] for _ in texts], tokens=0)

    async def close(self) -> None:
        return None
