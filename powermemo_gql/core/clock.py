"""The app's clock, injected: the system clock in production, a fake one that tests advance.

Times that decide who may hold a lease or when a buffer is idle are the database's (see
`db_now`), never a process's: instances whose clocks drift still agree on whether a lease has
run out and on which buffers are due. The app clock is for the rest: row timestamps and the
scheduler's ticks. `db_offset()` is how a fake clock makes database time pass too.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from powermemo_gql.core.types import UTCDateTime


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until `seconds` have passed on this clock."""
        ...

    def db_offset(self) -> float:
        """Seconds to add to the database's clock where this clock decides (the idle cutoff):
        0 for the system clock; for a fake one, how far it was advanced."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def db_offset(self) -> float:
        return 0.0


class FakeClock:
    """A clock that only moves when told to; sleepers wake once it has moved past their time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._advanced = 0.0  # where its start differs from real time, only advances count
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties wake in the order they slept

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._sleepers, (self._now + timedelta(seconds=seconds), next(self._order), woken)
        )
        await woken

    def advance(self, seconds: float) -> None:
        """Move on by `seconds`, waking every sleeper whose time has come."""
        self._now += timedelta(seconds=seconds)
        self._advanced += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _when, _order, woken = heapq.heappop(self._sleepers)
            if not woken.done():
                woken.set_result(None)

    def db_offset(self) -> float:
        # Rows stamped by the database before the advance look that much older, as they would
        # after real time passed; a start skewed from real time (two drifting instances) does
        # not move the database's clock.
        return self._advanced

    @property
    def sleeping(self) -> int:
        """How many sleepers wait for the clock to move (tests wait for this)."""
        return sum(1 for _when, _order, woken in self._sleepers if not woken.done())


class db_now(FunctionElement[datetime]):  # lower case: it reads as the SQL function it is
    """The database's clock, `seconds` on from now, in the form the dialect stores times.

    PostgreSQL: clock_timestamp() (not now(), which is fixed at the start of a transaction
    that may have waited for a lock). SQLite: the one clock of the process that owns the
    file, written as SQLAlchemy stores a naive UTC datetime (microseconds, so comparisons
    with stored values as strings order correctly).
    """

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(literal(float(seconds), Float()))


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(clock_timestamp() + make_interval(secs => {compiler.process(element.clauses, **kw)}))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', ({seconds}) || ' seconds')"
