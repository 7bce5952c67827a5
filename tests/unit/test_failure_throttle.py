"""Failed authentications per address: the limit-th failure blocks, the block ends."""

from __future__ import annotations

import asyncio
import time

from powermemo_gql.core.ratelimit import (
    FailureThrottle,
    Verdict,
    create_failure_throttle,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Refusing:
    """A shared counter (Redis) that another instance already pushed over the limit."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after

    async def hit(self, key: str) -> Verdict:
        return Verdict(False, self.retry_after)

    async def close(self) -> None:
        return None


async def test_the_limit_th_failure_blocks_the_address() -> None:
    throttle = create_failure_throttle(3, None)
    waits = []
    for _ in range(3):
        waits.append(throttle.retry_after("10.0.0.1"))
        await throttle.failed("10.0.0.1")
    assert waits == [None, None, None]
    wait = throttle.retry_after("10.0.0.1")
    assert wait is not None
    assert 1 <= wait <= 60
    assert throttle.retry_after("10.0.0.2") is None


async def test_the_block_ends_when_its_time_is_up() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(Refusing(retry_after=20), now=clock)
    await throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 20
    clock.now += 19.5
    assert throttle.retry_after("10.0.0.1") == 1
    clock.now += 1
    assert throttle.retry_after("10.0.0.1") is None


async def test_zero_turns_the_throttle_off() -> None:
    throttle = create_failure_throttle(0, None)
    for _ in range(100):
        await throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is None


async def test_blocked_addresses_are_bounded() -> None:
    throttle = FailureThrottle(Refusing(retry_after=60), now=FakeClock(), max_blocked=2)
    for address in ("a", "b", "c"):
        await throttle.failed(address)
    # The oldest block is forgotten first: memory stays bounded under a spray of addresses.
    assert [throttle.retry_after(a) is not None for a in ("a", "b", "c")] == [False, True, True]


async def test_a_limit_of_one_blocks_at_the_first_failure() -> None:
    throttle = create_failure_throttle(1, None)
    assert throttle.retry_after("10.0.0.1") is None
    await throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") is not None


async def test_a_frozen_redis_delays_a_failed_login_by_the_configured_timeout_only() -> None:
    # A server that accepts connections and never answers: Redis frozen, not refusing.
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    throttle = create_failure_throttle(3, f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        started = time.monotonic()
        await throttle.failed("10.0.0.9")
        waited = time.monotonic() - started
    finally:
        await throttle.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted, "the throttle never reached the frozen server"
    # The default is 1 s; the configured 0.2 s must be the bound (generous margin for load).
    assert waited < 0.9
    # Failing open: the address is not blocked because Redis could not count.
    assert throttle.retry_after("10.0.0.9") is None
