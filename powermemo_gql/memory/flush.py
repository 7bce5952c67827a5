"""Scheduling flushes: after inserts (size), on a timer (idle buffers), after recovery.

The flush itself is memory/job.py; its per-user lease is memory/leases.py. The scheduler's
idle cutoff and ticks run on the app's clock (a fake one in tests); leases on the database's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from powermemo_gql.buffers.models import FlushTrigger
from powermemo_gql.buffers.repository import BufferRepository
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.memory.deps import MemoryDeps
from powermemo_gql.memory.job import Claim, ClaimRefused, FlushAttempt, FlushJob, FlushOutcome

logger = logging.getLogger(__name__)

# Buffers the scheduler looks at per pass; the rest wait for the next pass.
DUE_PER_PASS = 100


class Flusher:
    """The flushes of this process: started on request, in the background, or by the timer."""

    def __init__(self, deps: MemoryDeps) -> None:
        self._metrics = deps.metrics
        self._clock = deps.clock
        self._sessions = deps.sessions
        self._settings = deps.settings
        self._job = FlushJob(deps)
        self._background: dict[uuid.UUID, asyncio.Task[FlushAttempt | None]] = {}

    # The job's own entry points

    async def flush(
        self,
        project_id: uuid.UUID,
        user_id: uuid.UUID,
        trigger: FlushTrigger,
        wait_seconds: float = 0.0,
    ) -> FlushAttempt:
        """See FlushJob.flush."""
        return await self._job.flush(project_id, user_id, trigger, wait_seconds)

    async def on_request(
        self, project_id: uuid.UUID, user_id: uuid.UUID, trigger: FlushTrigger, wait: bool
    ) -> FlushAttempt:
        """A flush asked for by a caller: with `wait`, run now (waiting up to a lease for one
        running elsewhere to end); without, scheduled in the background."""
        if not wait:
            self.schedule(project_id, user_id, trigger)
            return FlushAttempt(FlushOutcome.SCHEDULED)
        return await self.flush(
            project_id, user_id, trigger, wait_seconds=self._settings.flush_lease_seconds
        )

    async def claim(
        self, project_id: uuid.UUID, user_id: uuid.UUID, trigger: FlushTrigger
    ) -> Claim | ClaimRefused:
        """See FlushJob.claim."""
        return await self._job.claim(project_id, user_id, trigger)

    async def retry_failed(self, user_id: uuid.UUID) -> int:
        return await self._job.retry_failed(user_id)

    async def recover(self, user_id: uuid.UUID | None = None) -> int:
        """Abandon flushes whose lease ran out (see FlushJob.recover); with background flushes
        on, a pass over all users flushes their items again right away. How many."""
        dead = await self._job.recover(user_id)
        if self._settings.background_flushes and user_id is None:
            for project_id, dead_user in dead:
                self.schedule(project_id, dead_user, FlushTrigger.RECOVERY)
        return len(dead)

    # Triggers

    async def after_insert(
        self, project_id: uuid.UUID, user_id: uuid.UUID, idle_tokens: int | None = None
    ) -> None:
        """Start a background flush if the user's buffer is now over the limit.

        Called after the insert committed: a failure here must not fail the insert
        (the scheduler's next pass finds the buffer anyway). `idle_tokens`: the buffer's
        size as the insert found it, which saves reading it again.
        """
        if not self._settings.background_flushes:
            return
        tokens = idle_tokens
        if tokens is None:
            try:
                async with unit_of_work(self._sessions) as session:
                    tokens = await BufferRepository(session).idle_tokens(user_id)
            except Exception:
                logger.exception("could not check the buffer of user %s after an insert", user_id)
                return
        if tokens > self._settings.max_buffer_tokens:
            self.schedule(project_id, user_id, FlushTrigger.SIZE)

    def schedule(self, project_id: uuid.UUID, user_id: uuid.UUID, trigger: FlushTrigger) -> None:
        """A background flush of this user, unless this process already runs one."""
        running = self._background.get(user_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._background_flush(project_id, user_id, trigger))
        self._background[user_id] = task

    async def _background_flush(
        self, project_id: uuid.UUID, user_id: uuid.UUID, trigger: FlushTrigger
    ) -> FlushAttempt | None:
        try:
            return await self.flush(project_id, user_id, trigger)
        except Exception:  # a background task has nobody to raise to
            logger.exception("background flush of user %s failed", user_id)
            return None
        finally:
            self._background.pop(user_id, None)

    async def run_scheduler(self) -> None:
        """Forever: recover abandoned flushes, and flush idle or oversized buffers."""
        lease = self._settings.flush_lease_seconds
        tick = min(10.0, self._settings.buffer_flush_interval / 4, lease / 4)
        while True:
            try:
                await self.recover()
                await self.flush_due()
            except Exception:  # keep the scheduler alive through a database hiccup
                logger.exception("buffer scheduler pass failed")
            await self._clock.sleep(max(tick, 0.05))

    async def flush_due(self) -> list[tuple[uuid.UUID, FlushTrigger]]:
        """Schedule a background flush of every buffer idle for the flush interval or over the
        size limit; (user, trigger) of each. Idle is judged on the database's clock, which also
        stamped the items, so instances whose clocks drift agree on what is due."""
        idle_for = self._settings.buffer_flush_interval - self._clock.db_offset()
        async with unit_of_work(self._sessions) as session:
            buffers = BufferRepository(session)
            due = await buffers.users_due(idle_for, self._settings.max_buffer_tokens, DUE_PER_PASS)
            if self._metrics is not None:
                self._metrics.buffer_backlog.set(await buffers.idle_count())
        for project_id, user_id, reason in due:
            self.schedule(project_id, user_id, FlushTrigger(reason))
        return [(user_id, FlushTrigger(reason)) for _project_id, user_id, reason in due]

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Let running flushes finish for a while; the rest are recovered by lease later."""
        tasks = [t for t in self._background.values() if not t.done()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
