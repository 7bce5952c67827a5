"""How long the garbage collector stops the server: every collection timed, by generation,
into `powermemo_gc_pause_seconds`. A full (generation 2) collection stops every request and
every socket at once, so its pauses set the tail of fan-out delays (docs/benchmarks.md)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram

from powermemo_gql.core.gc_tuning import add_gc_callback, remove_gc_callback

# Full collections should stay under 20 ms: the buckets tell 5, 10 and 20 ms apart.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class GcPauses:
    """Times collections while started (the app's lifespan); gc.callbacks is process-wide,
    so each app removes its own callback when it stops."""

    def __init__(self, histogram: Histogram) -> None:
        self._by_generation = [histogram.labels(generation=str(g)) for g in range(3)]
        self._began = 0.0

    def start(self) -> None:
        add_gc_callback(self._callback)

    def stop(self) -> None:
        remove_gc_callback(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._began)
            self._began = 0.0
