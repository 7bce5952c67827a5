"""Full garbage collections kept short in a long-running server: after each one, what
survived it is moved out of the collector's reach (gc.freeze), so the next full collection
walks only what was made since, not every open socket's objects again.

What a full collection walks grows with the open websockets (their handler, tasks and
protocol state: ~170 objects each), and it stops everything while it does: at 1,000 sockets
25-45 ms. Frozen objects are still freed by reference counting, the usual way; only garbage
in reference cycles among them would stay. So once the frozen set has doubled since the last
look, everything is unfrozen and collected once (one long pause, rare), then frozen again.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

GcCallback = Callable[[str, dict[str, Any]], None]


def add_gc_callback(callback: GcCallback) -> None:
    """Once: gc.callbacks is process-wide, and apps (tests) start and stop in one process."""
    if callback not in gc.callbacks:
        gc.callbacks.append(callback)


def remove_gc_callback(callback: GcCallback) -> None:
    if callback in gc.callbacks:
        gc.callbacks.remove(callback)


# Unfreeze and collect once the frozen objects are this many times what they were after
# the last such collection (reconnecting sockets can leave cyclic garbage in them).
REGROWTH = 2.0


class FreezeSurvivors:
    """Installed by `serve` for the process (tests run many apps in one process: not there)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, regrowth: float = REGROWTH) -> None:
        self._loop = loop
        self._regrowth = regrowth
        self._scheduled = False
        self._collecting = False
        self._limit = 1

    def start(self) -> None:
        """Once start-up is done: what it built (modules, the schema, the engine, the pool)
        lives as long as the process, so it is frozen at once."""
        gc.collect()
        gc.freeze()
        self._limit = max(1, int(gc.get_freeze_count() * self._regrowth))
        add_gc_callback(self._after_collection)

    def stop(self) -> None:
        remove_gc_callback(self._after_collection)

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Called in the middle of whatever allocated: only schedule here.
        full = phase == "stop" and info["generation"] == 2
        if full and not (self._scheduled or self._collecting):
            self._scheduled = True
            self._loop.call_soon(self.freeze_survivors)

    def freeze_survivors(self) -> None:
        self._scheduled = False
        if gc.get_freeze_count() >= self._limit:
            self._collecting = True
            try:
                gc.unfreeze()
                gc.collect()
            finally:
                self._collecting = False
            gc.freeze()
            self._limit = max(1, int(gc.get_freeze_count() * self._regrowth))
            return
        gc.freeze()
