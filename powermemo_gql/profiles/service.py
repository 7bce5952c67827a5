from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.changes.models import ChangeKind
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.core.repository import parse_uuid
from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.core.validation import check_storable
from powermemo_gql.errors import Conflict, InvalidInput, NotFound
from powermemo_gql.profiles.models import (
    ProfileEntry,
    ProfileEntryRecord,
    ProfileRevision,
    ProfileSource,
    entry_change,
)
from powermemo_gql.profiles.repository import ProfileRepository
from powermemo_gql.users.models import UserView
from powermemo_gql.users.repository import UserRepository

MAX_LABEL_CHARS = 100
MAX_CONTENT_CHARS = 5000
MAX_IMPORT_CHARS = 50_000


def checked_text(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(field, "must not be empty")
    if len(text) > limit:
        raise InvalidInput(field, f"must be at most {limit} characters")
    check_storable(text, field)
    return text


def _most_recent(
    entries: list[ProfileEntryRecord], topk: int | None, max_tokens: int | None
) -> list[ProfileEntryRecord]:
    kept: set[uuid.UUID] = set()
    spent = 0
    for entry in sorted(entries, key=lambda e: e.updated_at, reverse=True):
        if topk is not None and len(kept) >= topk:
            break
        cost = count_tokens(f"{entry.topic}::{entry.sub_topic}: {entry.content}")
        if max_tokens is not None and spent + cost > max_tokens:
            break
        kept.add(entry.id)
        spent += cost
    return [e for e in entries if e.id in kept]


class ProfileService:
    def __init__(self, session: AsyncSession) -> None:
        self.entries = ProfileRepository(session)
        self.users = UserRepository(session)

    async def for_user(
        self,
        user_id: uuid.UUID,
        topics: Sequence[str] | None = None,
        topk: int | None = None,
        max_tokens: int | None = None,
    ) -> list[ProfileEntryRecord]:
        """Entries by topic and sub-topic; `topk` / `max_tokens` keep the most recently updated
        ones that fit (tokens of "topic::sub_topic: content")."""
        return (await self.for_users([user_id], topics, topk, max_tokens))[user_id]

    async def for_users(
        self,
        user_ids: Sequence[uuid.UUID],
        topics: Sequence[str] | None = None,
        topk: int | None = None,
        max_tokens: int | None = None,
    ) -> dict[uuid.UUID, list[ProfileEntryRecord]]:
        """for_user for many users in one query."""
        if topk is not None and topk < 0:
            raise InvalidInput("topk", "must not be negative")
        if max_tokens is not None and max_tokens < 0:
            raise InvalidInput("maxTokens", "must not be negative")
        profiles: dict[uuid.UUID, list[ProfileEntryRecord]] = {user_id: [] for user_id in user_ids}
        for entry in await self.entries.records_for_users(user_ids, topics):
            profiles[entry.user_id].append(entry)
        if topk is None and max_tokens is None:
            return profiles
        return {
            user_id: _most_recent(entries, topk, max_tokens)
            for user_id, entries in profiles.items()
        }

    async def add(
        self, user: UserView, topic: str, sub_topic: str, content: str, *, now: datetime
    ) -> ProfileEntry:
        """A new entry written by hand, created at `now` (the caller's clock)."""
        topic = checked_text(topic, "topic", MAX_LABEL_CHARS)
        sub_topic = checked_text(sub_topic, "subTopic", MAX_LABEL_CHARS)
        content = checked_text(content, "content", MAX_CONTENT_CHARS)
        await self.users.lock(user.id)  # first, before any row referring to the user
        if await self.entries.find(user.id, topic, sub_topic) is not None:
            raise Conflict("ProfileEntry", f"{topic}/{sub_topic}")
        try:
            entry = await self.entries.add(
                ProfileEntry(
                    project_id=user.project_id,
                    user_id=user.id,
                    topic=topic,
                    sub_topic=sub_topic,
                    content=content,
                    source=ProfileSource.MANUAL.value,
                    created_at=now,
                    updated_at=now,
                )
            )
        except IntegrityError as exc:  # added concurrently (by hand or by a flush)
            raise Conflict("ProfileEntry", f"{topic}/{sub_topic}") from exc
        await self._record(entry, ChangeKind.ENTRY_ADDED, None, content, now)
        return entry

    async def get(self, project_id: uuid.UUID, entry_id: str) -> ProfileEntry:
        parsed = parse_uuid(entry_id)
        entry = await self.entries.get_in_project(project_id, parsed) if parsed else None
        if entry is None:
            raise NotFound("ProfileEntry", entry_id)
        return entry

    async def update(
        self, project_id: uuid.UUID, entry_id: str, content: str, *, now: datetime
    ) -> ProfileEntry:
        """Replace the entry's content (updated at `now`, the caller's clock), if it differs."""
        content = checked_text(content, "content", MAX_CONTENT_CHARS)
        entry = await self._get_locked(project_id, entry_id)
        if content != entry.content:
            previous = entry.content
            await self.entries.update_content(
                entry, content, ProfileSource.MANUAL.value, None, at=now
            )
            await self._record(entry, ChangeKind.ENTRY_UPDATED, previous, content, now)
        return entry

    async def delete(self, project_id: uuid.UUID, entry_id: str, *, now: datetime) -> ProfileEntry:
        """Delete the entry at `now` (the caller's clock), keeping its last value."""
        entry = await self._get_locked(project_id, entry_id)
        await self._record(entry, ChangeKind.ENTRY_DELETED, entry.content, None, now)
        await self.entries.delete_keeping_history(entry, ProfileSource.MANUAL.value, at=now)
        return entry

    async def _get_locked(self, project_id: uuid.UUID, entry_id: str) -> ProfileEntry:
        """The entry, read again once its user's row lock is held: every write of a user
        takes that lock first (one lock order, so concurrent writes queue, never deadlock)."""
        entry = await self.get(project_id, entry_id)
        await self.users.lock(entry.user_id)
        current = await self.entries.reload(entry)
        if current is None:  # deleted while we waited for the lock
            raise NotFound("ProfileEntry", entry_id)
        return current

    async def _record(
        self,
        entry: ProfileEntry,
        kind: ChangeKind,
        old: str | None,
        new: str | None,
        now: datetime,
    ) -> None:
        await ChangeRepository(self.entries.session).append(
            [entry_change(entry, kind, old, new, ProfileSource.MANUAL, now=now)]
        )

    async def history(self, entry_id: uuid.UUID) -> list[ProfileRevision]:
        return await self.entries.revisions(entry_id)

    async def histories(
        self, entry_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ProfileRevision]]:
        """history of many entries at once."""
        return await self.entries.revisions_of_entries(entry_ids)
