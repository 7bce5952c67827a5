from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.pagination import Page, PageArgs
from powermemo_gql.core.validation import check_storable
from powermemo_gql.errors import InvalidInput
from powermemo_gql.events.models import Event
from powermemo_gql.events.repository import EventRepository

MAX_SEARCH_CHARS = 500


class EventService:
    def __init__(self, session: AsyncSession) -> None:
        self.events = EventRepository(session)

    async def for_user(
        self, user_id: uuid.UUID, args: PageArgs, search: str | None = None
    ) -> Page[Event]:
        if search is not None:
            search = search.strip()
            if len(search) > MAX_SEARCH_CHARS:
                raise InvalidInput("search", f"must be at most {MAX_SEARCH_CHARS} characters")
            check_storable(search, "search")
        return await self.events.list_for_user(user_id, args, search or None)
