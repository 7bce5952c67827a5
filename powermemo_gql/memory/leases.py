"""A flush's per-user lease while it runs: renewed in the background, checked at commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from powermemo_gql.buffers.repository import FlushLockRepository
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.uow import unit_of_work

logger = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """This flush's lease ran out or was taken over: it must write nothing."""


@contextlib.asynccontextmanager
async def renewing(
    sessions: SessionFactory, user_id: uuid.UUID, flush_id: uuid.UUID, lease: timedelta
) -> AsyncIterator[None]:
    """Renew the lease every third of its length while the block runs. A lost lease is not
    raised here: the commit checks the lease itself and writes nothing if it is gone.

    The ticks are real time, not the app's clock: the lease runs out on the database's
    clock, which no fake clock moves."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                async with unit_of_work(sessions) as session:
                    held = await FlushLockRepository(session).renew(user_id, flush_id, lease)
            except Exception:  # try again at the next tick; the lease has slack
                logger.warning("flush %s: lease renewal failed", flush_id, exc_info=True)
                continue
            if not held:
                logger.error("flush %s lost its lease", flush_id)
                return

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
