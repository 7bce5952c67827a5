"""Events: listing and searching a user's timeline; editing and deleting an event (its facts
rebuilt, re-indexed, recorded in the change feed)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from powermemo_gql.changes.models import Change, ChangeKind
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.pagination import Page, PageArgs
from powermemo_gql.core.repository import parse_uuid
from powermemo_gql.core.validation import check_storable
from powermemo_gql.errors import InvalidInput, NotFound
from powermemo_gql.events.models import Event, EventRecord
from powermemo_gql.events.repository import EventRepository
from powermemo_gql.profiles.models import ProfileSource
from powermemo_gql.recall.facts import facts_of
from powermemo_gql.recall.models import EventFact, MemoryVector, RecallKind
from powermemo_gql.recall.repository import RecallRepository
from powermemo_gql.users.repository import UserRepository

MAX_SEARCH_CHARS = 500
MAX_SUMMARY_CHARS = 20_000
MAX_TAGS = 50
MAX_TAG_CHARS = 100


def checked_tags(tags: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    if len(tags) > MAX_TAGS:
        raise InvalidInput("tags", f"must hold at most {MAX_TAGS} tags")
    checked = []
    for index, (tag, value) in enumerate(tags):
        for name, text in (("tag", tag.strip()), ("value", value.strip())):
            field = f"tags[{index}].{name}"
            if not text:
                raise InvalidInput(field, "must not be empty")
            if len(text) > MAX_TAG_CHARS:
                raise InvalidInput(field, f"must be at most {MAX_TAG_CHARS} characters")
            check_storable(text, field)
        checked.append({"tag": tag.strip(), "value": value.strip()})
    return checked


class EventService:
    def __init__(self, session: AsyncSession) -> None:
        self.events = EventRepository(session)
        self.session = session

    async def first_pages(
        self, user_ids: Sequence[uuid.UUID], size: int
    ) -> dict[uuid.UUID, Page[EventRecord]]:
        """for_user's first page (no filter) for many users at once."""
        return await self.events.first_pages_for_users(user_ids, size)

    async def for_user(
        self,
        user_id: uuid.UUID,
        args: PageArgs,
        search: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Page[EventRecord]:
        """`tags`: only events with one of them ("name", or "name:value")."""
        if search is not None:
            search = search.strip()
            if len(search) > MAX_SEARCH_CHARS:
                raise InvalidInput("search", f"must be at most {MAX_SEARCH_CHARS} characters")
            check_storable(search, "search")
        if tags is not None:
            if not 1 <= len(tags) <= MAX_TAGS:
                raise InvalidInput("tags", f"must hold between 1 and {MAX_TAGS} values")
            for index, tag in enumerate(tags):
                if not tag.strip() or len(tag) > 2 * MAX_TAG_CHARS + 1:
                    raise InvalidInput(f"tags[{index}]", "must be a tag name or name:value")
        return await self.events.list_for_user(user_id, args, search or None, tags)

    async def get(self, project_id: uuid.UUID, event_id: str) -> Event:
        parsed = parse_uuid(event_id)
        event = await self.session.get(Event, parsed) if parsed else None
        if event is None or event.project_id != project_id:
            raise NotFound("Event", event_id)
        return event

    async def _get_locked(self, project_id: uuid.UUID, event_id: str) -> Event:
        """The event, with its user's row lock taken (the one lock order of a user's writers:
        the recall indexer takes it too, so an edit queues behind a pass over these rows)."""
        event = await self.get(project_id, event_id)
        await UserRepository(self.session).lock(event.user_id)
        return event

    async def update(
        self,
        project_id: uuid.UUID,
        event_id: str,
        summary: str | None,
        tags: Sequence[tuple[str, str]] | None,
        *,
        now: datetime,
    ) -> Event:
        """A new summary (its facts rebuilt, all re-embedded) and/or new tags, edited at `now`
        (the caller's clock)."""
        if summary is not None:
            summary = summary.strip()
            if not summary:
                raise InvalidInput("summary", "must not be empty")
            if len(summary) > MAX_SUMMARY_CHARS:
                raise InvalidInput("summary", f"must be at most {MAX_SUMMARY_CHARS} characters")
            check_storable(summary, "summary")
        new_tags = checked_tags(tags) if tags is not None else None
        event = await self._get_locked(project_id, event_id)
        previous = event.summary
        changed = False
        if new_tags is not None and new_tags != event.tags:
            event.tags = new_tags
            changed = True
        if summary is not None and summary != event.summary:
            blob_ids = await self._blob_ids(event.id)
            event.summary = summary
            event.embedded_model = None  # re-embedded by the recall indexer
            event.embedding_flush_id = None  # an edit: no flush is charged for it (or its facts)
            await self.session.execute(delete(EventFact).where(col(EventFact.event_id) == event.id))
            self.session.add_all(facts_of(event, blob_ids, now=now))
            changed = True
        if changed:
            await self.session.flush()
            await self._record(event, ChangeKind.EVENT_UPDATED, previous, event.summary, now)
        return event

    async def delete(self, project_id: uuid.UUID, event_id: str, *, now: datetime) -> Event:
        """The event, its facts and their vectors (profile entries it wrote stay); deleted
        at `now` (the caller's clock)."""
        event = await self._get_locked(project_id, event_id)
        await self._record(event, ChangeKind.EVENT_DELETED, event.summary, None, now)
        fact_ids = select(col(EventFact.id)).where(col(EventFact.event_id) == event.id)
        await self.session.execute(
            delete(MemoryVector).where(
                col(MemoryVector.user_id) == event.user_id,
                (
                    (col(MemoryVector.kind) == RecallKind.EVENT.value)
                    & (col(MemoryVector.target_id) == event.id)
                )
                | (
                    (col(MemoryVector.kind) == RecallKind.FACT.value)
                    & col(MemoryVector.target_id).in_(fact_ids)
                ),
            )
        )
        await RecallRepository(self.session).bump(event.user_id)
        await self.session.delete(event)  # its facts go with it (ON DELETE CASCADE)
        await self.session.flush()
        return event

    async def _blob_ids(self, event_id: uuid.UUID) -> list[str]:
        """The blobs of an event, as its facts recorded them."""
        stored = await self.session.scalars(
            select(col(EventFact.source_blob_ids)).where(col(EventFact.event_id) == event_id)
        )
        return sorted({blob for ids in stored for blob in ids})

    async def _record(
        self, event: Event, kind: ChangeKind, old: str | None, new: str | None, now: datetime
    ) -> None:
        await ChangeRepository(self.session).append(
            [
                Change(
                    project_id=event.project_id,
                    user_id=event.user_id,
                    kind=kind.value,
                    event_id=event.id,
                    old_value=old,
                    new_value=new,
                    source=ProfileSource.MANUAL.value,
                    created_at=now,
                )
            ]
        )
