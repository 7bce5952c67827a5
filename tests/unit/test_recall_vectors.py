"""The vector scan's top-k selection: the head of a full stable sort, ties included."""

from __future__ import annotations

import numpy as np

from powermemo_gql.recall.vectors import top


def test_top_matches_a_full_stable_sort_with_ties() -> None:
    rng = np.random.default_rng(3)
    # Few distinct values: many ties, also across the limit-th place.
    scores = rng.integers(0, 5, size=2000).astype(np.float32)
    for limit in (1, 7, 100, 1999, 2000, 5000):
        expected = np.argsort(-scores, kind="stable")[:limit]
        assert top(scores, limit).tolist() == expected.tolist()


def test_top_of_distinct_scores_is_best_first() -> None:
    scores = np.asarray([0.1, 0.9, 0.5, 0.7], dtype=np.float32)
    assert top(scores, 2).tolist() == [1, 3]
