from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col

from powermemo_gql.buffers.models import (
    BufferItem,
    BufferStatus,
    Flush,
    FlushLock,
    FlushStatus,
    FlushStepUsage,
)
from powermemo_gql.core.clock import db_now
from powermemo_gql.core.repository import Repository


class BufferRepository(Repository[BufferItem]):
    model = BufferItem

    async def add_item(self, item: BufferItem) -> None:
        """Insert the item stamped with the database's clock, which the idle timer reads."""
        values = item.model_dump(exclude={"created_at"})
        await self.session.execute(insert(BufferItem).values(**values, created_at=db_now()))

    async def idle_tokens(self, user_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(col(BufferItem.token_count)), 0)).where(
                col(BufferItem.user_id) == user_id,
                col(BufferItem.status) == BufferStatus.IDLE.value,
            )
        )
        return int(total or 0)

    async def idle_count(self) -> int:
        count = await self.session.scalar(
            select(func.count()).where(col(BufferItem.status) == BufferStatus.IDLE.value)
        )
        return int(count or 0)

    async def pending_for_user(self, user_id: uuid.UUID) -> list[BufferItem]:
        """Items not yet done: idle, processing or failed, oldest first."""
        rows = await self.session.scalars(
            select(BufferItem)
            .where(
                col(BufferItem.user_id) == user_id,
                col(BufferItem.status) != BufferStatus.DONE.value,
            )
            .order_by(col(BufferItem.created_at), col(BufferItem.id))
        )
        return list(rows.all())

    async def pending_for_users(
        self, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[BufferItem]]:
        """pending_for_user for many users in one query."""
        found: dict[uuid.UUID, list[BufferItem]] = {user_id: [] for user_id in user_ids}
        rows = await self.session.scalars(
            select(BufferItem)
            .where(
                col(BufferItem.user_id).in_(user_ids),
                col(BufferItem.status) != BufferStatus.DONE.value,
            )
            .order_by(col(BufferItem.created_at), col(BufferItem.id))
        )
        for row in rows.all():
            found[row.user_id].append(row)
        return found

    async def claim_idle(
        self, user_id: uuid.UUID, flush_id: uuid.UUID, now: datetime
    ) -> list[BufferItem]:
        """Atomically move every idle item of the user to processing under this flush."""
        await self.session.execute(
            update(BufferItem)
            .where(
                col(BufferItem.user_id) == user_id,
                col(BufferItem.status) == BufferStatus.IDLE.value,
            )
            .values(status=BufferStatus.PROCESSING.value, flush_id=flush_id, updated_at=now)
        )
        rows = await self.session.scalars(
            select(BufferItem)
            .where(
                col(BufferItem.flush_id) == flush_id,
                col(BufferItem.status) == BufferStatus.PROCESSING.value,
            )
            .order_by(col(BufferItem.created_at), col(BufferItem.id))
            .execution_options(populate_existing=True)
        )
        return list(rows.all())

    async def finish(
        self, flush_id: uuid.UUID, status: BufferStatus, now: datetime, error: str | None = None
    ) -> int:
        """Move this flush's processing items to `status`; how many moved."""
        result = await self.session.execute(
            update(BufferItem)
            .where(
                col(BufferItem.flush_id) == flush_id,
                col(BufferItem.status) == BufferStatus.PROCESSING.value,
            )
            .values(status=status.value, error=error, updated_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def release(self, flush_ids: Sequence[uuid.UUID], now: datetime) -> int:
        """Items of dead flushes go back to idle, to be processed again."""
        result = await self.session.execute(
            update(BufferItem)
            .where(
                col(BufferItem.flush_id).in_(flush_ids),
                col(BufferItem.status) == BufferStatus.PROCESSING.value,
            )
            .values(status=BufferStatus.IDLE.value, updated_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def retry_failed(self, user_id: uuid.UUID, now: datetime) -> int:
        result = await self.session.execute(
            update(BufferItem)
            .where(
                col(BufferItem.user_id) == user_id,
                col(BufferItem.status) == BufferStatus.FAILED.value,
            )
            .values(status=BufferStatus.IDLE.value, error=None, updated_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def users_due(
        self, idle_seconds: float, token_limit: int, limit: int
    ) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """(project, user, reason) for buffers with nothing new for `idle_seconds` of the
        database's clock, or over the token limit."""
        stmt = (
            select(
                col(BufferItem.project_id),
                col(BufferItem.user_id),
                func.max(col(BufferItem.created_at)) < db_now(-idle_seconds),
                func.sum(col(BufferItem.token_count)),
            )
            .where(col(BufferItem.status) == BufferStatus.IDLE.value)
            .group_by(col(BufferItem.project_id), col(BufferItem.user_id))
            .order_by(func.min(col(BufferItem.created_at)))
            .limit(limit)
        )
        due = []
        for project_id, user_id, idle, tokens in (await self.session.execute(stmt)).all():
            if int(tokens or 0) > token_limit:
                due.append((project_id, user_id, "size"))
            elif idle:
                due.append((project_id, user_id, "idle"))
        return due


class FlushRepository(Repository[Flush]):
    model = Flush

    async def running_without_lease(
        self, user_id: uuid.UUID | None = None
    ) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
        """(flush, project, user) of running flushes that hold no lease; one statement, so
        one consistent view. All users, or one."""
        stmt = (
            select(col(Flush.id), col(Flush.project_id), col(Flush.user_id))
            .outerjoin(FlushLock, col(FlushLock.flush_id) == col(Flush.id))
            .where(col(Flush.status) == FlushStatus.RUNNING.value, col(FlushLock.user_id).is_(None))
        )
        if user_id is not None:
            stmt = stmt.where(col(Flush.user_id) == user_id)
        return [(f, p, u) for f, p, u in (await self.session.execute(stmt)).all()]

    async def finish(self, flush_id: uuid.UUID, now: datetime, **values: object) -> bool:
        """End a running flush; False if it is no longer running (e.g. it was abandoned)."""
        result = await self.session.execute(
            update(Flush)
            .where(col(Flush.id) == flush_id, col(Flush.status) == FlushStatus.RUNNING.value)
            .values(finished_at=now, **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def recent_for_user(self, user_id: uuid.UUID, limit: int) -> list[Flush]:
        rows = await self.session.scalars(
            select(Flush)
            .where(col(Flush.user_id) == user_id)
            .order_by(col(Flush.started_at).desc(), col(Flush.id).desc())
            .limit(limit)
        )
        return list(rows.all())

    async def recent_for_users(
        self, user_ids: Sequence[uuid.UUID], limit: int
    ) -> dict[uuid.UUID, list[Flush]]:
        """recent_for_user for many users in one query."""
        newest_first = (col(Flush.started_at).desc(), col(Flush.id).desc())
        position = (
            func.row_number()
            .over(partition_by=col(Flush.user_id), order_by=newest_first)
            .label("position")
        )
        inner = select(Flush).add_columns(position).where(col(Flush.user_id).in_(user_ids))
        ranked = inner.subquery()
        row = aliased(Flush, ranked)
        stmt = (
            select(row)
            .where(ranked.c.position <= limit)
            .order_by(ranked.c.user_id, ranked.c.position)
        )
        found: dict[uuid.UUID, list[Flush]] = {user_id: [] for user_id in user_ids}
        for flush in (await self.session.scalars(stmt)).all():
            found[flush.user_id].append(flush)
        return found

    async def usage_for_project(self, project_id: uuid.UUID) -> tuple[int, int, int, int]:
        """(flushes, LLM calls, input tokens, output tokens) of every flush of a project."""
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(col(Flush.llm_calls)), 0),
                    func.coalesce(func.sum(col(Flush.input_tokens)), 0),
                    func.coalesce(func.sum(col(Flush.output_tokens)), 0),
                ).where(col(Flush.project_id) == project_id)
            )
        ).one()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    async def usage_by_step(self, project_id: uuid.UUID) -> list[tuple[str, int, int, int]]:
        """(step, LLM calls, input tokens, output tokens) of a project, per pipeline step."""
        rows = await self.session.execute(
            select(
                col(FlushStepUsage.step),
                func.sum(col(FlushStepUsage.calls)),
                func.sum(col(FlushStepUsage.input_tokens)),
                func.sum(col(FlushStepUsage.output_tokens)),
            )
            .where(col(FlushStepUsage.project_id) == project_id)
            .group_by(col(FlushStepUsage.step))
            .order_by(col(FlushStepUsage.step))
        )
        return [(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows.all()]

    async def add_usage(
        self, flush_id: uuid.UUID, calls: int, input_tokens: int, output_tokens: int
    ) -> None:
        await self.session.execute(
            update(Flush)
            .where(col(Flush.id) == flush_id)
            .values(
                llm_calls=col(Flush.llm_calls) + calls,
                input_tokens=col(Flush.input_tokens) + input_tokens,
                output_tokens=col(Flush.output_tokens) + output_tokens,
            )
        )

    async def mark_abandoned(self, flush_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self.session.execute(
            update(Flush)
            .where(col(Flush.id).in_(flush_ids), col(Flush.status) == FlushStatus.RUNNING.value)
            .values(
                status=FlushStatus.ABANDONED.value,
                error="the process running this flush stopped",
                finished_at=now,
            )
        )


class FlushLockRepository(Repository[FlushLock]):
    """Lease rows: acquire, renew and release are single statements, safe across instances.

    Every expiry is set and compared on the database's clock (`db_now`), never a process's:
    two instances whose clocks disagree still agree on who holds a lease."""

    model = FlushLock

    async def acquire(self, flush: Flush, lease: timedelta) -> bool:
        """Take the lease of the flush's user for `lease`, if free or run out."""
        user_id, flush_id = flush.user_id, flush.id
        seconds = lease.total_seconds()
        taken = await self.session.execute(
            update(FlushLock)
            .where(col(FlushLock.user_id) == user_id, col(FlushLock.expires_at) < db_now())
            .values(flush_id=flush_id, expires_at=db_now(seconds))
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return True
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(FlushLock).values(
                        user_id=user_id,
                        project_id=flush.project_id,
                        flush_id=flush_id,
                        expires_at=db_now(seconds),
                    )
                )
        except IntegrityError:  # held by a live flush
            return False
        return True

    async def renew(self, user_id: uuid.UUID, flush_id: uuid.UUID, lease: timedelta) -> bool:
        """Extend a lease still held and not yet run out to `lease` from now; False means it
        is lost."""
        result = await self.session.execute(
            update(FlushLock)
            .where(
                col(FlushLock.user_id) == user_id,
                col(FlushLock.flush_id) == flush_id,
                col(FlushLock.expires_at) >= db_now(),
            )
            .values(expires_at=db_now(lease.total_seconds()))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, user_id: uuid.UUID, flush_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(FlushLock).where(
                col(FlushLock.user_id) == user_id, col(FlushLock.flush_id) == flush_id
            )
        )

    async def expire(self, user_id: uuid.UUID | None = None) -> int:
        """Delete leases that ran out (of all users, or one), so that their flushes count as
        dead from now on."""
        stmt = delete(FlushLock).where(col(FlushLock.expires_at) < db_now())
        if user_id is not None:
            stmt = stmt.where(col(FlushLock.user_id) == user_id)
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
