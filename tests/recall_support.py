"""A deterministic Embedder for tests: a bag of word "concepts" hashed into a unit vector,
so that words scripted as one concept ("meat", "vegetarian") come out close."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from powermemo_gql.errors import EmbeddingUnavailable
from powermemo_gql.recall.embeddings import Embeddings

DIET = {"eat": "diet", "meat": "diet", "vegetarian": "diet", "cuisine": "diet", "vegan": "diet"}


class WordEmbedder:
    """Implements the Embedder protocol. `failing`: every call raises EmbeddingUnavailable
    (as a provider down after its retries); `calls`: the purposes and texts it was asked."""

    def __init__(
        self,
        model: str = "fake:words-v1",
        dimensions: int = 256,
        concepts: Mapping[str, str] | None = None,
    ) -> None:
        self._model = model
        self._dimensions = dimensions
        self.concepts = dict(DIET if concepts is None else concepts)
        self.failing = False
        self.calls: list[tuple[str, list[str]]] = []

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def enabled(self) -> bool:
        return True

    def vector(self, text: str) -> list[float]:
        counts = np.zeros(self._dimensions, dtype=np.float64)
        for word in re.findall(r"\w+", text.lower()):
            concept = self.concepts.get(word, word)
            counts[zlib.crc32(concept.encode()) % self._dimensions] += 1.0
        norm = float(np.linalg.norm(counts))
        if norm == 0.0:
            counts[0], norm = 1.0, 1.0
        return [float(x) for x in counts / norm]

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        self.calls.append((purpose, list(texts)))
        if self.failing:
            raise EmbeddingUnavailable("the test embedder is failing")
        return Embeddings(vectors=[self.vector(t) for t in texts], tokens=0)

    async def close(self) -> None:
        return None
