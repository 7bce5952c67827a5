"""The recall indexer: embeds rows after their write committed, in batches, and retries.

Writes never wait for it: a new or changed row is stored with embedded_model NULL; a poke
after commit (through the change feed's listeners) embeds that user's waiting rows in the
background, and a loop finds whatever a failed or lost poke left behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from powermemo_gql.core.clock import Clock, SystemClock
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.recall.embeddings import Embedder
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.repository import RecallRepository
from powermemo_gql.recall.sources import text_of
from powermemo_gql.recall.usage_repository import EmbeddingUsageRepository
from powermemo_gql.users.repository import UserRepository

logger = logging.getLogger(__name__)

BATCH = 64  # texts per embedding call
USERS_PER_PASS = 100


def pack(vector: list[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def by_charge(rows: Sequence[Any]) -> dict[tuple[uuid.UUID, uuid.UUID | None], list[Any]]:
    """Rows grouped by who is charged for embedding them: their project, and the flush that
    wrote them (None: an edit, or rows embedded before). One embedding call per group, so
    the tokens the provider reports for it are that group's, not an estimate."""
    groups: dict[tuple[uuid.UUID, uuid.UUID | None], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.project_id, row.embedding_flush_id), []).append(row)
    return groups


async def embed_and_store(
    sessions: SessionFactory,
    embedder: Embedder,
    clock: Clock,
    kind: RecallKind,
    project_id: uuid.UUID,
    flush_id: uuid.UUID | None,
    rows: Sequence[Any],
) -> int:
    """Embeds one group (see by_charge) and stores its vectors, stamped with the clock's
    time; how many were stored (the rest changed since they were read). Raises what the
    embedder raises, storing nothing."""
    result = await embedder.embed([text_of(row) for row in rows], "index")
    model = embedder.model
    now = clock.now()
    stored, users = 0, set()
    async with unit_of_work(sessions) as session:
        # The user's row lock first, as every writer of a user's memory takes it: a delete
        # of these rows then queues behind this pass instead of deadlocking with it.
        for user_id in sorted({row.user_id for row in rows}):
            await UserRepository(session).lock(user_id)
        recall = RecallRepository(session)
        # In the transaction of the vectors: a failed call or store charges nothing, and
        # the retry that stores them charges once.
        usage = EmbeddingUsageRepository(session)
        await usage.add_usage(project_id, len(rows), result.tokens)
        if flush_id is not None:
            await usage.charge_flush(kind, flush_id, [row.id for row in rows], result.tokens)
        for row, vector in zip(rows, result.vectors, strict=True):
            content = row.summary if kind is RecallKind.EVENT else row.content
            # Its own length: an openai provider without embedding_dimensions learns it
            # from its first answer, after this pass began.
            if await recall.store_vector(kind, row, content, model, pack(vector), len(vector), now):
                stored += 1
                users.add(row.user_id)
        for user_id in sorted(users):  # searching processes reload these users' vectors
            await recall.bump(user_id)
    return stored


class Indexer:
    def __init__(
        self, sessions: SessionFactory, embedder: Embedder, clock: Clock | None = None
    ) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._clock = clock or SystemClock()
        self._running: dict[uuid.UUID, asyncio.Task[int]] = {}
        self._again: set[uuid.UUID] = set()

    def poke(self, user_id: uuid.UUID) -> None:
        """Embed this user's waiting rows soon (called after a commit; never raises)."""
        if not self._embedder.enabled:
            return
        running = self._running.get(user_id)
        if running is not None and not running.done():
            self._again.add(user_id)  # rows committed after that pass read: one more pass
            return
        self._running[user_id] = asyncio.create_task(self._background(user_id))

    async def _background(self, user_id: uuid.UUID) -> int:
        embedded = 0
        try:
            while True:
                self._again.discard(user_id)
                embedded += await self.index_user(user_id)
                if user_id not in self._again:
                    return embedded
        except Exception:  # nobody to raise to; the loop retries later
            logger.warning("indexing user %s failed; retried later", user_id, exc_info=True)
            return embedded
        finally:
            self._running.pop(user_id, None)

    async def index_user(self, user_id: uuid.UUID) -> int:
        """Embed every waiting row of a user; the number embedded. Raises what the embedder
        raises (EmbeddingUnavailable): what was stored before stays stored."""
        if not self._embedder.enabled:
            return 0
        model = self._embedder.model
        embedded = 0
        for kind in RecallKind:
            while True:
                async with unit_of_work(self._sessions) as session:
                    rows = await RecallRepository(session).waiting(kind, user_id, model, BATCH)
                if not rows:
                    break
                stored = 0
                for (project_id, flush_id), group in by_charge(rows).items():
                    # No session is open while the provider is asked.
                    stored += await embed_and_store(
                        self._sessions,
                        self._embedder,
                        self._clock,
                        kind,
                        project_id,
                        flush_id,
                        group,
                    )
                embedded += stored
                if stored == 0:  # every row changed meanwhile: the next poke has them
                    break
        async with unit_of_work(self._sessions) as session:
            await UserRepository(session).lock(user_id)  # one lock order (embed_and_store)
            await RecallRepository(session).prune(user_id)
        return embedded

    async def index_waiting(self) -> int:
        """One pass over the users with waiting rows; the number of rows embedded."""
        if not self._embedder.enabled:
            return 0
        async with unit_of_work(self._sessions) as session:
            users = await RecallRepository(session).users_waiting(
                self._embedder.model, USERS_PER_PASS
            )
        embedded = 0
        for _project_id, user_id in users:
            try:
                embedded += await self.index_user(user_id)
            except Exception:
                logger.warning("indexing user %s failed; retried later", user_id, exc_info=True)
        return embedded

    async def run(self, interval: float) -> None:
        """Forever, every `interval` seconds (embedding_catchup_seconds): embed what pokes
        left behind (failures, restarts, a model change)."""
        while True:
            # Sleeps first: at startup the pokes of new writes come soon enough.
            await asyncio.sleep(interval)
            try:
                await self.index_waiting()
            except Exception:  # keep the loop alive through a database hiccup
                logger.exception("recall indexing pass failed")

    async def close(self) -> None:
        tasks = [t for t in self._running.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait for the background passes running now (tests, shutdown)."""
        while tasks := [t for t in self._running.values() if not t.done()]:
            await asyncio.gather(*tasks, return_exceptions=True)
