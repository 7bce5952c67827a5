"""What embedding costs: the project's totals (llmUsage) and each flush's share."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from powermemo_gql.buffers.models import Flush
from powermemo_gql.recall.models import EmbeddingUsage, RecallKind
from powermemo_gql.recall.sources import SOURCES


class EmbeddingUsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def add_usage(self, project_id: uuid.UUID, texts: int, tokens: int) -> None:
        """Counts what one embedding call for this project's rows cost."""
        dialect = postgresql if self._postgres else sqlite
        stmt = dialect.insert(EmbeddingUsage).values(
            project_id=project_id, texts=texts, tokens=tokens
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["project_id"],
                set_={
                    "texts": col(EmbeddingUsage.texts) + texts,
                    "tokens": col(EmbeddingUsage.tokens) + tokens,
                },
            )
        )

    async def charge_flush(
        self, kind: RecallKind, flush_id: uuid.UUID, ids: Sequence[uuid.UUID], tokens: int
    ) -> int:
        """Charges the flush that wrote these rows for one embedding call of them (`tokens`
        its cost); how many rows were charged. Each row once, however many passes embed it
        (a retry, a concurrent pass): the statement that charges takes the charge off the
        rows, and a row still marked is charged. The tokens are shared out by rows charged."""
        source = SOURCES[kind]
        taken = await self.session.execute(
            update(source.model)
            .where(source.id.in_(ids), source.embedding_flush_id == flush_id)
            .values(embedding_flush_id=None)
        )
        charged = int(taken.rowcount)  # type: ignore[attr-defined]
        if charged:
            share = tokens if charged == len(ids) else tokens * charged // len(ids)
            await self.session.execute(
                update(Flush)
                .where(col(Flush.id) == flush_id)
                .values(
                    embedding_texts=col(Flush.embedding_texts) + charged,
                    embedding_tokens=col(Flush.embedding_tokens) + share,
                )
            )
        return charged

    async def usage(self, project_id: uuid.UUID) -> tuple[int, int]:
        """(texts embedded, tokens) of a project's indexing."""
        found = (
            await self.session.execute(
                select(col(EmbeddingUsage.texts), col(EmbeddingUsage.tokens)).where(
                    col(EmbeddingUsage.project_id) == project_id
                )
            )
        ).first()
        return (int(found[0]), int(found[1])) if found else (0, 0)
