"""What survives a full collection is frozen; once the frozen set has regrown, it is all
unfrozen and collected once, so garbage in cycles among frozen objects does not stay."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from powermemo_gql.core.gc_tuning import FreezeSurvivors


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> _Node:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return first


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process's objects, frozen by the test: back to the collector


async def _full_collection_then_loop_turn() -> None:
    gc.collect(2)
    await asyncio.sleep(0)  # the freeze is scheduled on the loop, not done inside gc


@pytest.mark.usefixtures("unfrozen_after")
async def test_survivors_of_a_full_collection_are_frozen() -> None:
    survivors = FreezeSurvivors(asyncio.get_running_loop(), regrowth=1_000_000)
    survivors.start()  # start-up's objects: frozen at once
    try:
        after_start = gc.get_freeze_count()
        made_since = [_cycle() for _ in range(100)]
        await _full_collection_then_loop_turn()
        frozen = gc.get_freeze_count()
    finally:
        survivors.stop()

    assert after_start > 0
    assert frozen >= after_start + 2 * len(made_since)


@pytest.mark.usefixtures("unfrozen_after")
async def test_cyclic_garbage_among_frozen_objects_is_collected_once_they_regrow() -> None:
    gc.unfreeze()
    survivors = FreezeSurvivors(asyncio.get_running_loop(), regrowth=1_000_000)
    survivors.start()
    try:
        alive = _cycle()
        garbage = weakref.ref(alive)
        await _full_collection_then_loop_turn()  # the cycle survives it: frozen
        survivors.stop()
        del alive
        gc.collect(2)
        assert garbage() is not None  # unreachable, but the collector does not look at it

        # Its limit is below the frozen count already: as if the frozen set had regrown.
        regrown = FreezeSurvivors(asyncio.get_running_loop(), regrowth=0.5)
        regrown.freeze_survivors()

        assert garbage() is None
        assert gc.get_freeze_count() > 0  # what was alive is frozen again
    finally:
        survivors.stop()
