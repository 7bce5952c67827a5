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

from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.recall.embeddings import Embedder
from powermemo_gql.recall.index import pack
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.repository import RecallRepository
from powermemo_gql.recall.sources import text_of

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
    def __init__(self, sessions: SessionFactory, embedder: Embedder) -> None:
        self._sessions = sessions
        self._embedder = embedder

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
        by_project: dict[uuid.UUID, list[Any]] = {}
        for row in rows:
            by_project.setdefault(row.project_id, []).append(row)
        # One call per project: the tokens it reports are that project's.
        return sum([await self._store_of(kind, p, found) for p, found in by_project.items()])

    async def _store_of(self, kind: RecallKind, project_id: uuid.UUID, rows: list[Any]) -> int:
        result = await self._embedder.embed([text_of(row) for row in rows], "index")
        model = self._embedder.model
        stored, users = 0, set()
        async with unit_of_work(self._sessions) as session:
            recall = RecallRepository(session)
            await recall.add_usage(project_id, len(rows), result.tokens)
            for row, vector in zip(rows, result.vectors, strict=True):
                content = row.summary if kind is RecallKind.EVENT else row.content
                if await recall.store_vector(kind, row, content, model, pack(vector), len(vector)):
                    stored += 1
                    users.add(row.user_id)
            for user_id in users:  # searching processes reload these users' vectors
                await recall.bump(user_id)
        return stored

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
