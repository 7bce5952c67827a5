"""One flush: claim a user's idle items, run the pipeline, write the result at once.

Durability: items move idle -> processing -> done | failed. A flush holds a per-user lease
(a database row, so it works across server instances) that it renews while it runs; if its
process dies, the lease runs out, the flush is marked abandoned and its items go back to idle.
Profile changes, the event, and the items' new status are written in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from powermemo_gql.blobs.models import BlobType
from powermemo_gql.blobs.repository import BlobRepository
from powermemo_gql.buffers.models import BufferItem, BufferStatus, Flush, FlushStatus, FlushTrigger
from powermemo_gql.buffers.repository import BufferRepository, FlushLockRepository, FlushRepository
from powermemo_gql.changes.models import ChangeKind
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.errors import LLMUnavailable
from powermemo_gql.memory.deps import MemoryDeps
from powermemo_gql.memory.leases import LeaseLost, renewing
from powermemo_gql.memory.parsing import Usage
from powermemo_gql.memory.pipeline import (
    CurrentEntry,
    MemoryPipeline,
    PipelineResult,
)
from powermemo_gql.memory.steps import instructions_for
from powermemo_gql.memory.transcript import lines_of
from powermemo_gql.memory.writes import (
    flush_change,
    record_steps,
    usage_values,
    write_flush_result,
)
from powermemo_gql.profiles.config import ProfileConfig
from powermemo_gql.profiles.repository import ProfileRepository
from powermemo_gql.projects.repository import ProjectRepository
from powermemo_gql.users.repository import UserRepository

logger = logging.getLogger(__name__)


class ClaimRefused(Enum):
    """Why a claim took nothing."""

    NOTHING_IDLE = "nothing idle"
    LEASE_HELD = "another flush holds the lease"


@dataclass(frozen=True)
class Claim:
    """A started flush: it holds the user's lease and its items are processing."""

    flush: Flush
    items: list[BufferItem]


class FlushOutcome(Enum):
    """Why a flush request returned what it did."""

    SCHEDULED = "scheduled"  # not waited for: it runs in the background (or one already runs)
    FLUSHED = "flushed"  # it ran; the flush says whether it succeeded
    NOTHING_TO_FLUSH = "nothing_to_flush"  # the buffer had no idle item
    BUSY = "busy"  # another flush of this user still held the lease after waiting
    INTERRUPTED = "interrupted"  # it lost its lease mid-way; its items are flushed again


@dataclass(frozen=True)
class FlushAttempt:
    outcome: FlushOutcome
    flush: Flush | None = None


class FlushJob:
    """One flush at a time per user, across instances: claim, pipeline, commit or fail."""

    def __init__(self, deps: MemoryDeps) -> None:
        settings = deps.settings
        self._metrics = deps.metrics
        self._clock = deps.clock
        self._sessions = deps.sessions
        self._feed = deps.feed
        self._settings = settings
        self._pipeline = MemoryPipeline.from_settings(deps.llm, settings)
        self._lease = timedelta(seconds=settings.flush_lease_seconds)
        # Flushes run at once by this process; more would only queue for LLM slots while
        # holding leases.
        self._slots = asyncio.Semaphore(settings.llm_max_concurrency)

    async def recover(self, user_id: uuid.UUID | None = None) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Flushes whose lease ran out (of all users, or one) are abandoned and their items go
        back to idle; (project, user) of each.

        Expired leases are deleted first, in the same transaction: a flush that comes back
        to commit after this finds its lease gone and writes nothing.
        """
        async with unit_of_work(self._sessions) as session:
            await FlushLockRepository(session).expire(user_id)
            flushes = FlushRepository(session)
            dead = await flushes.running_without_lease(user_id)
            if not dead:
                return []
            now = self._clock.now()
            released = await BufferRepository(session).release([f for f, _, _ in dead], now)
            await flushes.mark_abandoned([f for f, _, _ in dead], now)
        logger.warning(
            "recovered %d abandoned flush(es), %d item(s) back to idle", len(dead), released
        )
        return [(project, user) for _flush_id, project, user in dead]

    async def retry_failed(self, user_id: uuid.UUID) -> int:
        async with unit_of_work(self._sessions) as session:
            return await BufferRepository(session).retry_failed(user_id, self._clock.now())

    async def flush(
        self,
        project_id: uuid.UUID,
        user_id: uuid.UUID,
        trigger: FlushTrigger,
        wait_seconds: float = 0.0,
    ) -> FlushAttempt:
        """Flush the user's idle items, waiting up to `wait_seconds` for another flush of this
        user to finish first; the attempt says what happened and holds the finished flush.

        The wait is real time, not the app's clock: the other flush's lease runs out on the
        database's clock."""
        deadline = time.monotonic() + wait_seconds
        while True:
            # A slot is held only while this flush can work: never while it waits for
            # another flush's lease.
            async with self._slots:
                claimed = await self.claim(project_id, user_id, trigger)
                if isinstance(claimed, Claim):
                    return await self._process(claimed.flush, claimed.items)
                if claimed is ClaimRefused.NOTHING_IDLE:
                    return FlushAttempt(FlushOutcome.NOTHING_TO_FLUSH)
            if time.monotonic() >= deadline:
                return FlushAttempt(FlushOutcome.BUSY)
            await asyncio.sleep(0.1)

    async def _process(self, flush: Flush, items: list[BufferItem]) -> FlushAttempt:
        finished = True  # False once it turns out the flush was abandoned meanwhile
        usage = Usage()
        try:
            async with (
                renewing(self._sessions, flush.user_id, flush.id, self._lease),
                asyncio.timeout(self._settings.flush_timeout_seconds),
            ):
                result = await self._run_pipeline(flush.project_id, flush.user_id, items, usage)
            await self._commit(flush, items, result)
        except LeaseLost:
            logger.error("flush %s lost its lease; its items are flushed again", flush.id)
            self._count_flush(FlushStatus.ABANDONED)
            await self._record_usage(flush, usage)
            finished = False
        except LLMUnavailable as exc:
            finished = await self._fail(flush, exc.message, usage)
        except TimeoutError:
            limit = self._settings.flush_timeout_seconds
            finished = await self._fail(flush, f"timed out after {limit:g} s", usage)
        except Exception:
            logger.exception("flush %s failed", flush.id)
            finished = await self._fail(flush, "internal error (see the server log)", usage)
        outcome = FlushOutcome.FLUSHED if finished else FlushOutcome.INTERRUPTED
        return FlushAttempt(outcome, await self._load(flush.id))

    async def claim(
        self, project_id: uuid.UUID, user_id: uuid.UUID, trigger: FlushTrigger
    ) -> Claim | ClaimRefused:
        """Take the user's lease and idle items, in one transaction. What `flush` does first;
        on its own (in tests), a flush whose process died right after starting."""
        # A dead flush of this user gives its items back first, whether or not any
        # instance runs the background scheduler.
        await self.recover(user_id)
        flush = Flush(project_id=project_id, user_id=user_id, trigger=trigger.value)
        async with unit_of_work(self._sessions) as session:
            locks = FlushLockRepository(session)
            if not await locks.acquire(flush, self._lease):
                return ClaimRefused.LEASE_HELD
            # On PostgreSQL the acquire can wait for the previous holder's commit: the flush
            # starts now, not when its row was built.
            flush.started_at = self._clock.now()
            session.add(flush)
            await session.flush()
            items = await BufferRepository(session).claim_idle(user_id, flush.id, self._clock.now())
            if items:
                flush.item_count = len(items)
                return Claim(flush, items)
            # Nothing to do: undo the flush row and the lease together.
            await session.delete(flush)
            await locks.release(user_id, flush.id)
            return ClaimRefused.NOTHING_IDLE

    async def _run_pipeline(
        self, project_id: uuid.UUID, user_id: uuid.UUID, items: list[BufferItem], usage: Usage
    ) -> PipelineResult:
        async with unit_of_work(self._sessions) as session:
            blobs = {
                b.id: b for b in await BlobRepository(session).get_many([i.blob_id for i in items])
            }
            profile = await ProfileRepository(session).list_for_user(user_id)
            project = await ProjectRepository(session).get(project_id)
        per_blob = [
            lines_of(BlobType(blob.type), blob.payload, blob.created_at)
            for i in items
            if (blob := blobs.get(i.blob_id)) is not None
        ]
        # In the order things were said (an imported history may arrive in any order).
        per_blob.sort(key=lambda lines: min(line.said_at for line in lines))
        config = ProfileConfig.from_stored(project.profile_config if project else {})
        instructions = instructions_for(config, self._settings)
        return await self._pipeline.run(
            [line for lines in per_blob for line in lines],
            [CurrentEntry(e.id, e.topic, e.sub_topic, e.content) for e in profile],
            config,
            instructions,
            ZoneInfo(self._settings.timezone),
            usage=usage,
        )

    async def _commit(self, flush: Flush, items: list[BufferItem], result: PipelineResult) -> None:
        """Write the profile changes, the event and the items' status at once, or nothing."""
        async with unit_of_work(self._sessions) as session:
            await UserRepository(session).lock(flush.user_id)  # first: one lock order per user
            locks = FlushLockRepository(session)
            if not await locks.renew(flush.user_id, flush.id, self._lease):
                raise LeaseLost(str(flush.id))
            now = self._clock.now()
            blob_ids = [i.blob_id for i in items]
            event = await write_flush_result(session, flush, blob_ids, result, now)
            # Every claimed item must still be ours, and the flush still running.
            done = await BufferRepository(session).finish(flush.id, BufferStatus.DONE, now)
            if done != len(items):
                raise LeaseLost(str(flush.id))
            if not await FlushRepository(session).finish(
                flush.id,
                now,
                status=FlushStatus.DONE.value,
                event_id=event.id,
                **usage_values(result.usage),
            ):
                raise LeaseLost(str(flush.id))
            await locks.release(flush.user_id, flush.id)
        await self._feed.notify(flush.user_id)
        self._count_flush(FlushStatus.DONE)

    async def _fail(self, flush: Flush, reason: str, usage: Usage) -> bool:
        """Mark the flush failed; False when it had been abandoned meanwhile."""
        async with unit_of_work(self._sessions) as session:
            # First, as every writer of the user does (see UserRepository.lock): a failing
            # flush that locked its flush row first could deadlock with an edit or a delete.
            await UserRepository(session).lock(flush.user_id)
            now = self._clock.now()
            still_running = await FlushRepository(session).finish(
                flush.id,
                now,
                status=FlushStatus.FAILED.value,
                error=reason,
                **usage_values(usage),
            )
            if still_running:  # else it was abandoned: its items are already idle again
                await record_steps(session, flush, usage)
                await BufferRepository(session).finish(flush.id, BufferStatus.FAILED, now, reason)
                failed = flush_change(flush, ChangeKind.FLUSH_FAILED, now=now, error=reason)
                await ChangeRepository(session).append([failed])
            await FlushLockRepository(session).release(flush.user_id, flush.id)
        if still_running:
            await self._feed.notify(flush.user_id)
            self._count_flush(FlushStatus.FAILED)
        logger.warning("flush %s failed: %s", flush.id, reason)
        return still_running

    def _count_flush(self, status: FlushStatus) -> None:
        if self._metrics is not None:
            self._metrics.flushes.labels(status.value).inc()

    async def _record_usage(self, flush: Flush, usage: Usage) -> None:
        """What an abandoned flush spent still counts towards the project's usage."""
        async with unit_of_work(self._sessions) as session:
            flushes = FlushRepository(session)
            await flushes.add_usage(flush.id, usage.calls, usage.input_tokens, usage.output_tokens)
            await record_steps(session, flush, usage)

    async def _load(self, flush_id: uuid.UUID) -> Flush | None:
        async with unit_of_work(self._sessions) as session:
            return await FlushRepository(session).get(flush_id)
