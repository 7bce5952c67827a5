"""Failed authentications per address: the limit-th failure blocks, the block ends."""

from __future__ import annotations

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
