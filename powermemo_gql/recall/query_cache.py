"""Query vectors kept per process: a search, or a context for the same chat, asked again
(a retried request, a page reloaded, an agent repeating itself) embeds its text once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from powermemo_gql.recall.embeddings import Embedder, Embeddings

QUERY = "query"


class CachedQueryEmbedder:
    """An Embedder that remembers the vectors of the last `size` query texts it embedded.

    Only single-text query calls are kept (what search and context send); indexing goes
    straight to the provider. A remembered vector costs no provider call, so no tokens. The
    cache belongs to one embedder, so to one model: a model change is a new process."""

    def __init__(self, inner: Embedder, size: int) -> None:
        self._inner = inner
        self._size = size
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    @property
    def enabled(self) -> bool:
        return self._inner.enabled

    async def embed(self, texts: Sequence[str], purpose: str) -> Embeddings:
        if purpose != QUERY or len(texts) != 1:
            return await self._inner.embed(texts, purpose)
        text = texts[0]
        vector = self._vectors.get(text)
        if vector is not None:
            self._vectors.move_to_end(text)
            return Embeddings(vectors=[vector], tokens=0)
        embedded = await self._inner.embed(texts, purpose)
        self._vectors[text] = embedded.vectors[0]
        if len(self._vectors) > self._size:
            self._vectors.popitem(last=False)
        return embedded

    async def close(self) -> None:
        await self._inner.close()
