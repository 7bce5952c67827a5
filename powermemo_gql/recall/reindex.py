"""Reindexing: embeds every row whose vector is missing or was made by another model.

Safe beside live traffic: each batch is read in one short transaction and stored in another,
with no session open while the provider is asked, so no lock is held across an embedding
call. A row edited meanwhile is not given the vector of its old text (store_vector compares
the content); the live indexer embeds its new text. Resumable: every stored batch is
committed and marks its rows with the current model, so a second run finds only what the
first did not finish.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from powermemo_gql.core.clock import Clock, SystemClock
from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.recall.embeddings import Embedder
from powermemo_gql.recall.index import by_charge, embed_and_store
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.repository import RecallRepository

BATCH = 128  # rows per transaction; the embedder splits them into its own request batches

# Told (done, total) after every batch.
Progress = Callable[[int, int], None]


@dataclass
class ReindexReport:
    total: int = 0  # rows found to embed
    embedded: int = 0
    # Rows whose content changed between read and store: left to the live indexer.
    changed: int = 0
    # Rows of this model's name whose vectors had another length, marked to embed again.
    resized: int = 0


class Reindexer:
    def __init__(
        self, sessions: SessionFactory, embedder: Embedder, clock: Clock | None = None
    ) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._clock = clock or SystemClock()

    async def run(
        self,
        project_id: uuid.UUID | None = None,
        missing_only: bool = False,
        progress: Progress | None = None,
    ) -> ReindexReport:
        """Raises what the embedder raises (EmbeddingUnavailable): the batches stored
        before stay stored, and a new run continues from there."""
        report = ReindexReport()
        model = self._embedder.model
        if not missing_only:
            report.resized = await self._unmark_other_dimensions(project_id)
        async with unit_of_work(self._sessions) as session:
            recall = RecallRepository(session)
            for kind in RecallKind:
                report.total += await recall.count_to_reindex(kind, project_id, model, missing_only)
        if progress is not None:
            progress(0, report.total)
        for kind in RecallKind:
            after: uuid.UUID | None = None
            while True:
                async with unit_of_work(self._sessions) as session:
                    rows = await RecallRepository(session).to_reindex(
                        kind, project_id, model, missing_only, after, BATCH
                    )
                if not rows:
                    break
                after = rows[-1].id
                stored = await self._store(kind, rows)
                report.embedded += stored
                report.changed += len(rows) - stored
                if progress is not None:
                    # Rows made meanwhile can push it past the total counted at the start.
                    done = report.embedded + report.changed
                    progress(done, max(report.total, done))
        return report

    async def _store(self, kind: RecallKind, rows: Sequence[Any]) -> int:
        """Embeds and stores one batch; how many were stored (unchanged since read)."""
        # One call per project and flush: the tokens it reports are theirs.
        return sum(
            [
                await embed_and_store(
                    self._sessions, self._embedder, self._clock, kind, p, flush_id, found
                )
                for (p, flush_id), found in by_charge(rows).items()
            ]
        )

    async def _unmark_other_dimensions(self, project_id: uuid.UUID | None) -> int:
        dimensions = self._embedder.dimensions
        if dimensions == 0:  # an openai provider without embedding_dimensions: ask it once
            await self._embedder.embed(["dimensions"], "index")
            dimensions = self._embedder.dimensions
        marked = 0
        for kind in RecallKind:
            while True:
                async with unit_of_work(self._sessions) as session:
                    found = await RecallRepository(session).unmark_other_dimensions(
                        kind, project_id, self._embedder.model, dimensions, BATCH
                    )
                marked += found
                if found == 0:
                    break
        return marked
