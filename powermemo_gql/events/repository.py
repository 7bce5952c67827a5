from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, bindparam, cast, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import col

from powermemo_gql.core.pagination import (
    Page,
    PageArgs,
    by_time,
    first_record_pages,
    paginate_records,
)
from powermemo_gql.core.repository import Repository, like_pattern, record_columns
from powermemo_gql.events.models import Event, EventRecord

# 'simple': no stemming or stop words, so it works for every language the same way.
FTS_CONFIG = "simple"

# Timelines: what happened last first (an imported history is dated as it was said).
EVENTS_NEWEST_FIRST = by_time(Event, "happened_from", "events:happened_from:desc", descending=True)

# The reads select the columns of EventRecord, whose fields are the table's columns: Core rows,
# no ORM instances. Built once (building a statement costs more CPU than running it).
_RECORDS = select(*record_columns(Event, EventRecord))
_RECORDS_OF_USER = _RECORDS.where(
    col(Event.user_id) == bindparam("user_id"),
    col(Event.id).in_(bindparam("ids", expanding=True)),
)


class EventRepository(Repository[Event]):
    model = Event

    async def of_user(self, user_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[EventRecord]:
        """These events of this user (ids of other users' events are left out)."""
        if not ids:
            return []
        rows = await self.session.execute(_RECORDS_OF_USER, {"user_id": user_id, "ids": list(ids)})
        return [EventRecord(*row) for row in rows]

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        args: PageArgs,
        search: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Page[EventRecord]:
        stmt = _RECORDS.where(col(Event.user_id) == user_id)
        if search:
            stmt = stmt.where(self._matches(search))
        if tags is not None:
            stmt = stmt.where(or_(*(self._tagged(tag) for tag in tags)))
        return await paginate_records(self.session, stmt, EVENTS_NEWEST_FIRST, args, EventRecord)

    async def first_pages_for_users(
        self, user_ids: Sequence[uuid.UUID], size: int
    ) -> dict[uuid.UUID, Page[EventRecord]]:
        """The first page of each user's timeline, in one query."""
        stmt = _RECORDS.where(col(Event.user_id).in_(user_ids))
        user = col(Event.user_id)
        return await first_record_pages(
            self.session, EventRecord, stmt, user, EVENTS_NEWEST_FIRST, size, user_ids
        )

    def _tagged(self, wanted: str) -> ColumnElement[bool]:
        """Events with a tag of that name ("activity"), or that tag and value
        ("activity:sport"): the same rule as recall's tag filter."""
        name, _, value = wanted.partition(":")
        tag = {"tag": name, "value": value} if value else {"tag": name}
        if self.session.get_bind().dialect.name == "postgresql":
            return col(Event.tags).op("@>")(cast(literal(json.dumps([tag])), JSONB))
        items = func.json_each(col(Event.tags)).table_valued("value").alias("tag_items")
        matches = [
            func.json_extract(items.c.value, f"$.{key}") == text for key, text in tag.items()
        ]
        return exists(select(literal(1)).select_from(items).where(*matches))

    def _matches(self, search: str) -> ColumnElement[bool]:
        """Events whose summary holds every word of `search`."""
        if self.session.get_bind().dialect.name == "postgresql":
            # Full-text, served by the GIN index of migration "event summary search".
            document = func.to_tsvector(FTS_CONFIG, col(Event.summary))
            return document.bool_op("@@")(func.plainto_tsquery(FTS_CONFIG, search))
        # SQLite: case-insensitive substring match of each word.
        return and_(
            *(
                func.lower(col(Event.summary)).like(like_pattern(word), escape="\\")
                for word in search.split()
            )
        )
