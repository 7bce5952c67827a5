from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import String, any_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel import col

from powermemo_gql.core.driver_path import DriverStatement
from powermemo_gql.core.repository import Repository, record_columns
from powermemo_gql.profiles.models import (
    ProfileEntry,
    ProfileEntryRecord,
    ProfileRevision,
    RevisionAction,
)

# The profile read, built once (building a statement costs more CPU than running it): the
# users' entries, optionally of some topics only, in slot order.
_ENTRIES = ProfileEntry.__table__.c  # type: ignore[attr-defined]
_SLOT_ORDER = (_ENTRIES.topic, _ENTRIES.sub_topic, _ENTRIES.id)
_OF_USERS = (
    select(ProfileEntry)
    .where(col(ProfileEntry.user_id).in_(bindparam("user_ids", expanding=True)))
    .order_by(*_SLOT_ORDER)
)
_OF_USERS_IN_TOPICS = _OF_USERS.where(
    col(ProfileEntry.topic).in_(bindparam("topics", expanding=True))
)
# The same reads as rows for ProfileEntryRecord, whose fields are the table's columns; for
# the driver (core/driver_path.py) with arrays instead of expanding IN lists.
_RECORD_COLUMNS = record_columns(ProfileEntry, ProfileEntryRecord)
_RECORDS_BY_ARRAYS = select(*_RECORD_COLUMNS).where(
    _ENTRIES.user_id == any_(bindparam("user_ids", type_=ARRAY(PgUUID(as_uuid=True))))
)
_RECORDS_OF_USERS = DriverStatement(
    _OF_USERS.with_only_columns(*_RECORD_COLUMNS),
    ProfileEntryRecord,
    postgresql=_RECORDS_BY_ARRAYS.order_by(*_SLOT_ORDER),
)
_RECORDS_OF_USERS_IN_TOPICS = DriverStatement(
    _OF_USERS_IN_TOPICS.with_only_columns(*_RECORD_COLUMNS),
    ProfileEntryRecord,
    postgresql=_RECORDS_BY_ARRAYS.where(
        _ENTRIES.topic == any_(bindparam("topics", type_=ARRAY(String)))
    ).order_by(*_SLOT_ORDER),
)


Read = TypeVar("Read")


def _profile_read(
    user_ids: Sequence[uuid.UUID],
    topics: Sequence[str] | None,
    every_topic: Read,
    some_topics: Read,
) -> tuple[Read, dict[str, Any]]:
    """The read and parameters of a profile read, of some topics or of all."""
    if topics:
        return some_topics, {"user_ids": list(user_ids), "topics": list(topics)}
    return every_topic, {"user_ids": list(user_ids)}


class ProfileRepository(Repository[ProfileEntry]):
    model = ProfileEntry

    async def list_for_user(
        self, user_id: uuid.UUID, topics: Sequence[str] | None = None
    ) -> list[ProfileEntry]:
        return await self.list_for_users([user_id], topics)

    async def list_for_users(
        self, user_ids: Sequence[uuid.UUID], topics: Sequence[str] | None = None
    ) -> list[ProfileEntry]:
        statement, params = _profile_read(user_ids, topics, _OF_USERS, _OF_USERS_IN_TOPICS)
        return list((await self.session.scalars(statement, params)).all())

    async def records_for_users(
        self, user_ids: Sequence[uuid.UUID], topics: Sequence[str] | None = None
    ) -> list[ProfileEntryRecord]:
        """list_for_users for reading only: Core rows, in the same order."""
        read, params = _profile_read(
            user_ids, topics, _RECORDS_OF_USERS, _RECORDS_OF_USERS_IN_TOPICS
        )
        return await read.all(self.session, params)

    async def update_content(
        self,
        entry: ProfileEntry,
        content: str,
        source: str,
        event_id: uuid.UUID | None,
        flush_id: uuid.UUID | None = None,
        *,
        at: datetime,
    ) -> None:
        """Replace an entry's content at `at`, keeping the previous value as a revision.
        `flush_id`: the flush writing it, charged for embedding the new content (None: an
        edit)."""
        self._keep_revision(entry, RevisionAction.UPDATE, source, event_id, at)
        entry.content = content
        entry.embedded_model = None  # re-embedded by the recall indexer
        entry.embedding_flush_id = flush_id
        entry.source = source
        entry.source_event_id = event_id
        entry.updated_at = at
        await self.session.flush()

    async def mark_mentioned(self, entry_ids: Sequence[uuid.UUID], at: datetime) -> None:
        """The user spoke of these entries again at `at` (their content stays as it is)."""
        if entry_ids:
            await self.session.execute(
                update(ProfileEntry)
                .where(
                    col(ProfileEntry.id).in_(entry_ids),
                    # Never back in time: an older history may be imported after newer chats.
                    or_(
                        col(ProfileEntry.last_mentioned_at).is_(None),
                        col(ProfileEntry.last_mentioned_at) < at,
                    ),
                )
                .values(last_mentioned_at=at)
            )

    async def find(self, user_id: uuid.UUID, topic: str, sub_topic: str) -> ProfileEntry | None:
        return await self.session.scalar(
            select(ProfileEntry).where(
                col(ProfileEntry.user_id) == user_id,
                col(ProfileEntry.topic) == topic,
                col(ProfileEntry.sub_topic) == sub_topic,
            )
        )

    async def get_in_project(
        self, project_id: uuid.UUID, entry_id: uuid.UUID
    ) -> ProfileEntry | None:
        return await self.session.scalar(
            select(ProfileEntry).where(
                col(ProfileEntry.id) == entry_id, col(ProfileEntry.project_id) == project_id
            )
        )

    async def reload(self, entry: ProfileEntry) -> ProfileEntry | None:
        """The entry as committed now (None once deleted): read again after taking the user's
        lock, so that an edit builds on the latest content, not on what it read before."""
        return await self.session.scalar(
            select(ProfileEntry)
            .where(col(ProfileEntry.id) == entry.id)
            .execution_options(populate_existing=True)
        )

    async def delete_keeping_history(
        self,
        entry: ProfileEntry,
        source: str,
        event_id: uuid.UUID | None = None,
        *,
        at: datetime,
    ) -> None:
        """Delete the entry at `at`, keeping its last value as a revision."""
        self._keep_revision(entry, RevisionAction.DELETE, source, event_id, at)
        await self.session.delete(entry)
        await self.session.flush()

    def _keep_revision(
        self,
        entry: ProfileEntry,
        action: RevisionAction,
        source: str,
        event_id: uuid.UUID | None,
        at: datetime,
    ) -> None:
        self.session.add(
            ProfileRevision(
                project_id=entry.project_id,
                user_id=entry.user_id,
                entry_id=entry.id,
                topic=entry.topic,
                sub_topic=entry.sub_topic,
                content=entry.content,
                action=action,
                source=source,
                source_event_id=event_id,
                created_at=at,
            )
        )

    async def revisions_of_entries(
        self, entry_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ProfileRevision]]:
        """revisions for many entries in one query."""
        found: dict[uuid.UUID, list[ProfileRevision]] = {entry_id: [] for entry_id in entry_ids}
        rows = await self.session.scalars(
            select(ProfileRevision)
            .where(col(ProfileRevision.entry_id).in_(entry_ids))
            .order_by(col(ProfileRevision.created_at), col(ProfileRevision.id))
        )
        for row in rows.all():
            found[row.entry_id].append(row)
        return found

    async def revisions(self, entry_id: uuid.UUID) -> list[ProfileRevision]:
        rows = await self.session.scalars(
            select(ProfileRevision)
            .where(col(ProfileRevision.entry_id) == entry_id)
            .order_by(col(ProfileRevision.created_at), col(ProfileRevision.id))
        )
        return list(rows.all())
