"""The faults the drill injects, each with the condition that says the system recovered."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import httpx

from bench.faults.clients import Clients
from bench.faults.infra import Postgres, Powermemo, Redis
from bench.faults.llm import FaultyResponder

# Generous: the machine may be loaded, and a killed flush waits for its lease to run out.
RECOVERY_BOUND = 90.0
FIND_FLUSH_BOUND = 30.0


@dataclass
class FaultResult:
    fault: str
    action: str
    at: float  # seconds since the load started
    injected: bool
    lasted: float  # seconds from the fault's start to its end (restarted, thawed, consumed)
    recovery: float | None  # seconds from its start until recovered; None: not in the bound
    note: str = ""


async def wait_until(condition: Callable[[], Awaitable[bool]], bound: float) -> bool:
    """Poll `condition` (each try at most 15 s) until it holds or `bound` seconds pass."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a failing probe means "not yet"
            if await asyncio.wait_for(condition(), timeout=15):
                return True
        await asyncio.sleep(0.3)
    return False


@dataclass
class Drill:
    pg: Postgres
    redis: Redis
    apis: list[Powermemo]
    worker: Powermemo
    llm: FaultyResponder
    clients: Clients
    freeze_seconds: float
    t0: float = 0.0

    async def _fetchval(self, sql: str, *args: object) -> object:
        conn = await asyncpg.connect(self.pg.dsn, timeout=10, command_timeout=10)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def _running_flush(self, triggers: tuple[str, ...]) -> str | None:
        found = await self._fetchval(
            "SELECT id::text FROM flushes WHERE status = 'running' AND trigger = ANY($1) "
            "ORDER BY started_at DESC LIMIT 1",
            list(triggers),
        )
        return found if isinstance(found, str) else None

    async def _flush_settled(self, flush_id: str) -> bool:
        """The killed flush is no longer running and none of its items is still claimed."""
        left = await self._fetchval(
            "SELECT (SELECT count(*) FROM flushes WHERE id = $1::uuid AND status = 'running') "
            "+ (SELECT count(*) FROM buffer_items WHERE flush_id = $1::uuid "
            "AND status = 'processing')",
            flush_id,
        )
        return left == 0

    async def _serving(self) -> bool:
        async with httpx.AsyncClient(timeout=5) as http:
            for api in self.apis:
                if (await http.get(f"{api.base_url}/readyz")).status_code != 200:
                    return False
        return await self.clients.probe()

    def _now(self) -> float:
        return time.monotonic() - self.t0

    async def _find_flush(self, triggers: tuple[str, ...]) -> str | None:
        deadline = time.monotonic() + FIND_FLUSH_BOUND
        while time.monotonic() < deadline:
            try:
                found = await self._running_flush(triggers)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                found = None
            if found:
                return found
            await asyncio.sleep(0.1)
        return None

    async def kill_worker(self) -> FaultResult:
        flush_id = await self._find_flush(("size", "idle", "recovery"))
        at = self._now()
        began = time.monotonic()
        self.worker.kill9()
        await asyncio.to_thread(self.worker.start)
        lasted = time.monotonic() - began
        ok = flush_id is not None and await wait_until(
            lambda: self._flush_settled(flush_id), RECOVERY_BOUND
        )
        note = f"flush {flush_id[:8]} abandoned and its items released" if flush_id else ""
        return FaultResult(
            "kill -9 worker mid-flush",
            "SIGKILL worker, start a new one",
            at,
            flush_id is not None,
            lasted,
            time.monotonic() - began if ok else None,
            note or "no flush was running",
        )

    async def kill_api(self) -> FaultResult:
        api = self.apis[0]
        url = f"{api.base_url}/graphql"
        flushes = [asyncio.create_task(self.clients.flush(url, u)) for u in self.clients.users]
        flush_id = await self._find_flush(("manual",))
        at = self._now()
        began = time.monotonic()
        api.kill9()
        await asyncio.gather(*flushes)
        await asyncio.to_thread(api.start)
        lasted = time.monotonic() - began

        async def recovered() -> bool:
            return flush_id is not None and await self._flush_settled(flush_id)

        ok = await wait_until(recovered, RECOVERY_BOUND) and await wait_until(
            self._serving, RECOVERY_BOUND
        )
        note = f"flushBuffer {flush_id[:8]} abandoned, items released" if flush_id else ""
        return FaultResult(
            "kill -9 API instance mid-flush",
            f"SIGKILL {api.name}, restart",
            at,
            flush_id is not None,
            lasted,
            time.monotonic() - began if ok else None,
            note or "no flushBuffer was running",
        )

    async def _outage(self, fault: str, action: str, inject: Callable[[], None]) -> FaultResult:
        at = self._now()
        began = time.monotonic()
        await asyncio.to_thread(inject)
        lasted = time.monotonic() - began
        ok = await wait_until(self._serving, RECOVERY_BOUND)
        return FaultResult(
            fault,
            action,
            at,
            True,
            lasted,
            time.monotonic() - began if ok else None,
            "readyz 200 and an insert through each API instance",
        )

    def _frozen(self, freeze: Callable[[], None], thaw: Callable[[], None]) -> Callable[[], None]:
        def inject() -> None:
            freeze()
            try:
                time.sleep(self.freeze_seconds)
            finally:
                thaw()

        return inject

    async def restart_postgres(self) -> FaultResult:
        return await self._outage(
            "PostgreSQL restart", "pg_ctl restart -m immediate", self.pg.restart_immediate
        )

    async def freeze_postgres(self) -> FaultResult:
        return await self._outage(
            "PostgreSQL freeze",
            f"SIGSTOP all its processes {self.freeze_seconds:g} s, SIGCONT",
            self._frozen(self.pg.freeze, self.pg.thaw),
        )

    async def restart_redis(self) -> FaultResult:
        return await self._outage(
            "Redis restart", "SIGKILL redis-server, start it again", self.redis.restart
        )

    async def freeze_redis(self) -> FaultResult:
        return await self._outage(
            "Redis freeze",
            f"SIGSTOP {self.freeze_seconds:g} s, SIGCONT",
            self._frozen(self.redis.freeze, self.redis.thaw),
        )

    async def llm_fault(self, kind: str, count: int = 4) -> FaultResult:
        before = self.llm.injected[kind]
        at = self._now()
        began = time.monotonic()
        self.llm.force(kind, count)

        async def consumed() -> bool:
            return self.llm.injected[kind] >= before + count

        injected = await wait_until(consumed, RECOVERY_BOUND)
        lasted = time.monotonic() - began
        since = await self._fetchval("SELECT now()")

        async def flushed_again() -> bool:
            done = await self._fetchval(
                "SELECT count(*) FROM flushes WHERE status = 'done' AND started_at > $1", since
            )
            return isinstance(done, int) and done > 0

        ok = injected and await wait_until(flushed_again, RECOVERY_BOUND)
        names = {
            "timeout": "LLM timeouts",
            "429": "LLM 429",
            "500": "LLM 500",
            "garbage": "LLM garbage",
        }
        return FaultResult(
            names[kind],
            f"next {count} LLM requests: {kind}",
            at,
            injected,
            lasted,
            time.monotonic() - began if ok else None,
            "a flush started after them finished DONE",
        )
