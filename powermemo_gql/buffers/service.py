from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.buffers.models import BufferItem, Flush
from powermemo_gql.buffers.repository import BufferRepository, FlushRepository


class BufferService:
    def __init__(self, session: AsyncSession) -> None:
        self.items = BufferRepository(session)
        self.flushes = FlushRepository(session)

    async def pending(self, user_id: uuid.UUID) -> list[BufferItem]:
        return await self.items.pending_for_user(user_id)

    async def recent_flushes(self, user_id: uuid.UUID, limit: int) -> list[Flush]:
        return await self.flushes.recent_for_user(user_id, limit)

    async def pending_of_users(
        self, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[BufferItem]]:
        return await self.items.pending_for_users(user_ids)

    async def recent_flushes_of_users(
        self, user_ids: Sequence[uuid.UUID], limit: int
    ) -> dict[uuid.UUID, list[Flush]]:
        return await self.flushes.recent_for_users(user_ids, limit)

    async def project_usage(self, project_id: uuid.UUID) -> tuple[int, int, int, int]:
        return await self.flushes.usage_for_project(project_id)

    async def project_usage_by_step(self, project_id: uuid.UUID) -> list[tuple[str, int, int, int]]:
        return await self.flushes.usage_by_step(project_id)
