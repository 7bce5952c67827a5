from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.changes.models import Change
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.pagination import Page, PageArgs


class ChangeService:
    def __init__(self, session: AsyncSession) -> None:
        self.changes = ChangeRepository(session)

    async def for_user(self, user_id: uuid.UUID, args: PageArgs) -> Page[Change]:
        return await self.changes.list_for_user(user_id, args)

    async def latest_seq(self, user_id: uuid.UUID) -> int:
        """The number of the user's last change (0 for none)."""
        return await self.changes.latest_seq(user_id)

    async def first_pages(
        self, user_ids: Sequence[uuid.UUID], size: int
    ) -> dict[uuid.UUID, Page[Change]]:
        """for_user's first page for many users at once."""
        return await self.changes.first_pages_for_users(user_ids, size)
