"""Collections are timed, by generation, while the app runs, and no longer once it stopped."""

from __future__ import annotations

import gc

from powermemo_gql.observability.gc_pauses import GcPauses
from powermemo_gql.observability.metrics import Metrics


def _full_collections(metrics: Metrics) -> float:
    count = metrics.registry.get_sample_value(
        "powermemo_gc_pause_seconds_count", {"generation": "2"}
    )
    return count or 0.0


def test_full_collections_are_timed_while_started() -> None:
    metrics = Metrics()
    pauses = GcPauses(metrics.gc_pauses)
    pauses.start()
    try:
        gc.collect(2)
        gc.collect(2)
    finally:
        pauses.stop()
    timed = _full_collections(metrics)
    total = metrics.registry.get_sample_value("powermemo_gc_pause_seconds_sum", {"generation": "2"})
    gc.collect(2)

    assert timed >= 2
    assert total is not None
    assert total > 0
    assert _full_collections(metrics) == timed  # stopped: not counted any more
