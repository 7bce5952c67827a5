"""The vector side of search: an exact scan of a user's vectors, kept in memory.

Reading 10k vectors from the database for every search costs far more than comparing them
(numpy does 10k x 384 in about a millisecond), so each process keeps the vectors of the users
it searched, with what the filters need, and reloads a user's only when their version row
(bumped in every transaction that changes their vectors, by any process) has moved.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from powermemo_gql.recall.memory_index import MemoryIndex
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.repository import RecallRepository, Scope

# Bytes of vectors kept per process; the users searched longest ago are dropped first.
MAX_CACHED_BYTES = 256 * 1024 * 1024
_KIND_CODES = {kind: code for code, kind in enumerate(RecallKind)}
_KINDS = list(RecallKind)


@dataclass(frozen=True)
class UserVectors:
    version: int
    kinds: npt.NDArray[np.int8]
    ids: list[uuid.UUID]
    event_ids: list[uuid.UUID | None]
    topics: list[str | None]
    starts: npt.NDArray[np.float64]  # happened_from as a timestamp; NaN for profile entries
    ends: npt.NDArray[np.float64]
    matrix: npt.NDArray[np.float32]  # one unit row per vector

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes)


def _timestamp(value: datetime | None) -> float:
    return value.timestamp() if value is not None else float("nan")


class VectorCache:
    def __init__(self, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self._max_bytes = max_bytes
        # Search ranks in PostgreSQL where pgvector is in use (recall/pgvector.py); False: here.
        self.use_pgvector = True
        self._users: OrderedDict[tuple[uuid.UUID, str, int], UserVectors] = OrderedDict()
        # The keyword side and the bookkeeping of search, cached the same way.
        self.memory = MemoryIndex()

    async def get(
        self,
        recall: RecallRepository,
        user_id: uuid.UUID,
        model: str,
        dimensions: int,
        version: int | None = None,
    ) -> UserVectors:
        """`version`: the user's vector version if the caller read it already."""
        key = (user_id, model, dimensions)
        if version is None:
            version = await recall.version(user_id)
        cached = self._users.get(key)
        if cached is not None and cached.version == version:
            self._users.move_to_end(key)
            return cached
        loaded = await self._load(recall, user_id, model, dimensions, version)
        self._users[key] = loaded
        self._users.move_to_end(key)
        while sum(v.nbytes for v in self._users.values()) > self._max_bytes and self._users:
            self._users.popitem(last=False)
        return loaded

    async def _load(
        self,
        recall: RecallRepository,
        user_id: uuid.UUID,
        model: str,
        dimensions: int,
        version: int,
    ) -> UserVectors:
        kinds: list[int] = []
        ids: list[uuid.UUID] = []
        event_ids: list[uuid.UUID | None] = []
        topics: list[str | None] = []
        starts: list[float] = []
        ends: list[float] = []
        blobs: list[bytes] = []
        for kind in RecallKind:
            for target, event, topic, start, end, dims, vector in await recall.vector_set(
                kind, user_id, model
            ):
                if dims != dimensions:  # same model name, other size: never compared
                    continue
                kinds.append(_KIND_CODES[kind])
                ids.append(target)
                event_ids.append(event)
                topics.append(topic)
                starts.append(_timestamp(start))
                ends.append(_timestamp(end))
                blobs.append(vector)
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimensions)
        return UserVectors(
            version=version,
            kinds=np.asarray(kinds, dtype=np.int8),
            ids=ids,
            event_ids=event_ids,
            topics=topics,
            starts=np.asarray(starts, dtype=np.float64),
            ends=np.asarray(ends, dtype=np.float64),
            matrix=matrix,
        )


def most_similar(
    vectors: UserVectors,
    query: list[float],
    kinds: list[RecallKind],
    scope: Scope,
    allowed_events: set[uuid.UUID | None] | None,
    excluded: set[uuid.UUID],
    limit: int,
) -> list[tuple[RecallKind, uuid.UUID, uuid.UUID | None, float]]:
    """The `limit` rows in scope most similar to the query, best first: (kind, id, event id,
    cosine). `excluded`: rows whose vector is stale (changed since it was made)."""
    if not vectors.ids:
        return []
    mask = np.isin(vectors.kinds, [_KIND_CODES[k] for k in kinds])
    if scope.topics is not None:
        wanted = set(scope.topics)
        mask &= np.fromiter((t in wanted for t in vectors.topics), bool, len(vectors.ids))
    with np.errstate(invalid="ignore"):  # NaN (profile entries) compares False
        if scope.happened_after is not None:
            mask &= vectors.ends >= scope.happened_after.timestamp()
        if scope.happened_before is not None:
            mask &= vectors.starts <= scope.happened_before.timestamp()
    if allowed_events is not None:
        mask &= np.fromiter(
            (e in allowed_events for e in vectors.event_ids), bool, len(vectors.ids)
        )
    if excluded:
        mask &= np.fromiter((i not in excluded for i in vectors.ids), bool, len(vectors.ids))
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return []
    # Unfiltered (the usual case): no copy of the matrix.
    matrix = vectors.matrix if rows.size == len(vectors.ids) else vectors.matrix[rows]
    # einsum, not `@`: OpenBLAS spreads a matrix-vector product over threads, which on a
    # busy machine made the 10k scan ~15x slower (bench/recall_search.py floor).
    scores = np.einsum("ij,j->i", matrix, np.asarray(query, dtype=np.float32))
    order = top(scores, limit)
    return [
        (
            _KINDS[int(vectors.kinds[rows[i]])],
            vectors.ids[rows[i]],
            vectors.event_ids[rows[i]],
            float(scores[i]),
        )
        for i in order
    ]


def top(scores: npt.NDArray[np.float32], limit: int) -> npt.NDArray[np.intp]:
    """Indices of the `limit` highest scores, best first, ties by index: the head of a stable
    sort of all of them, without sorting all of them."""
    if scores.size <= limit:
        return np.argsort(-scores, kind="stable")
    negated = -scores
    kth = np.partition(negated, limit - 1)[limit - 1]
    chosen = np.flatnonzero(negated <= kth)  # every score tied with the limit-th one too
    return chosen[np.argsort(negated[chosen], kind="stable")][:limit]
