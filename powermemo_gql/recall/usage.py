"""What indexing has cost a project (read by llmUsage)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.recall.usage_repository import EmbeddingUsageRepository


@dataclass(frozen=True)
class EmbeddingCost:
    texts: int
    tokens: int


async def embedding_cost(session: AsyncSession, project_id: uuid.UUID) -> EmbeddingCost:
    texts, tokens = await EmbeddingUsageRepository(session).usage(project_id)
    return EmbeddingCost(texts, tokens)
