"""The fake clock moves only when told to, and wakes its sleepers in time order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from powermemo_gql.core.clock import FakeClock, SystemClock

START = datetime(2026, 1, 1, tzinfo=UTC)


async def test_sleepers_wake_only_once_the_clock_passes_their_time() -> None:
    clock = FakeClock(START)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("late", 20), ("early", 10))]
    await asyncio.sleep(0)
    assert clock.sleeping == 2

    clock.advance(9.9)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(0.1)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.advance(100)
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    assert clock.now() == START + timedelta(seconds=110)
    assert clock.sleeping == 0


async def test_a_cancelled_sleeper_is_not_counted() -> None:
    clock = FakeClock(START)
    task = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.sleeping == 0
    clock.advance(10)  # waking a cancelled sleeper is harmless


def test_the_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
