"""Scoring: BM25 over keyword matches, and reciprocal rank fusion of the vector and keyword
lists (cosine similarity is in vectors.py)."""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Sequence

from powermemo_gql.recall.repository import Candidate, words

RRF_K = 60  # the usual constant of reciprocal rank fusion: dampens the weight of the top
BM25_K1 = 1.2
BM25_B = 0.75


def by_bm25(
    candidates: Sequence[Candidate], terms: Sequence[str], documents: int, limit: int
) -> list[tuple[Candidate, float]]:
    """BM25 of each candidate for the query terms, best first; candidates without a whole
    word of the query (a substring prefilter's false matches) are dropped. `documents`:
    how many rows were in scope (for the inverse document frequency)."""
    return by_bm25_counted(
        [(c, Counter(words(c.payload))) for c in candidates], terms, documents, limit
    )


def by_bm25_counted(
    candidates: Sequence[tuple[Candidate, Counter[str]]],
    terms: Sequence[str],
    documents: int,
    limit: int,
) -> list[tuple[Candidate, float]]:
    """As by_bm25, for candidates whose words are counted already (recall/memory_index.py)."""
    unique = list(dict.fromkeys(terms))
    counted = [(c, tf) for c, tf in candidates if any(t in tf for t in unique)]
    if not counted:
        return []
    lengths = [sum(tf.values()) for _, tf in counted]
    average = sum(lengths) / len(counted)
    total = max(documents, len(counted))
    idf = {}
    for term in unique:
        df = sum(1 for _, tf in counted if term in tf)
        idf[term] = math.log(1 + (total - df + 0.5) / (df + 0.5))
    scored = []
    # The same arithmetic, in the same order, as the formula written out once per term:
    # idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average)).
    for (candidate, tf), length in zip(counted, lengths, strict=True):
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average)
        score = sum(idf[t] * tf[t] * (BM25_K1 + 1) / (tf[t] + norm) for t in unique if t in tf)
        scored.append((candidate, score))
    # Best first, ties by id (a UUID orders as its text does); only `limit` are kept.
    return heapq.nsmallest(limit, scored, key=lambda pair: (-pair[1], pair[0].target_id))


def fused(ranks: Sequence[int | None]) -> float:
    """The reciprocal rank fusion score of one row from its 1-based ranks (None: absent)."""
    return sum(1.0 / (RRF_K + rank) for rank in ranks if rank is not None)
