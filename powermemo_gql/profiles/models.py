"""The long-term user profile: topic / sub_topic / content, with provenance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from powermemo_gql.changes.models import Change, ChangeKind
from powermemo_gql.core.types import JSONType, UTCDateTime, new_id, utcnow


class ProfileSource(StrEnum):
    LLM = "llm"  # extracted from blobs by the memory pipeline
    MANUAL = "manual"  # written through the API
    IMPORT = "import"  # imported from text


class RevisionAction(StrEnum):
    """What replaced a kept value of an entry."""

    UPDATE = "update"
    DELETE = "delete"


class ProfileEntry(SQLModel, table=True):
    __tablename__ = "profile_entries"
    # One entry per topic/sub-topic of a user: what the pipeline merges into and edits address.
    __table_args__ = (UniqueConstraint("user_id", "topic", "sub_topic"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    topic: str = Field(max_length=100)
    sub_topic: str = Field(max_length=100)
    content: str = Field(sa_type=Text)
    # Provenance: where this entry came from.
    source: str = Field(default=ProfileSource.MANUAL.value, max_length=16)
    source_blob_ids: list[str] = Field(default_factory=list, sa_type=JSONType)
    source_event_id: uuid.UUID | None = Field(
        default=None, foreign_key="events.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When the user last spoke of it (the latest message time of the flush that wrote or
    # confirmed it); None for entries written by hand or imported from text.
    last_mentioned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The model of its vector; None: new or changed, not embedded yet (recall/index.py).
    embedded_model: str | None = Field(default=None, max_length=128, index=True)
    # The flush that wrote it, to charge for embedding it (Flush.embedding_tokens); cleared
    # once charged, and by an edit. Not a foreign key: charging a flush that is gone updates
    # nothing.
    embedding_flush_id: uuid.UUID | None = Field(default=None)


@dataclass(frozen=True, slots=True)
class ProfileEntryRecord:
    """A profile entry as the reads return it: from a Core row, no ORM instance (loading 10
    entries as ORM instances cost ~0.1 ms more CPU than the rows). The same attributes as
    ProfileEntry, in its table's column order; only writes need the ORM entry."""

    id: uuid.UUID
    project_id: uuid.UUID
    user_id: uuid.UUID
    topic: str
    sub_topic: str
    content: str
    source: str
    source_blob_ids: list[str]
    source_event_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    last_mentioned_at: datetime | None
    embedded_model: str | None
    embedding_flush_id: uuid.UUID | None


# What the reads of a profile may hold: entries read as records, or ORM entries just written.
ProfileEntryView = ProfileEntry | ProfileEntryRecord


class ProfileRevision(SQLModel, table=True):
    """A previous value of a profile entry, kept when it was updated or deleted."""

    __tablename__ = "profile_revisions"
    __table_args__ = (Index(None, "entry_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    # Not a foreign key: the history of a deleted entry is kept until its user is deleted.
    entry_id: uuid.UUID
    topic: str = Field(max_length=100)
    sub_topic: str = Field(max_length=100)
    content: str = Field(sa_type=Text)
    action: str = Field(max_length=16)  # "update" or "delete": what replaced this value
    source: str = Field(max_length=16)  # who replaced it (ProfileSource)
    source_event_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def entry_change(
    entry: ProfileEntry,
    kind: ChangeKind,
    old: str | None,
    new: str | None,
    source: ProfileSource,
    *,
    now: datetime,
    flush_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> Change:
    """The change-feed record of a write to a profile entry, whoever made it (a flush, an
    import, an edit by hand): one vocabulary for a profile change. `now`: when it was made
    (the writer's clock)."""
    return Change(
        project_id=entry.project_id,
        user_id=entry.user_id,
        kind=kind.value,
        entry_id=entry.id,
        topic=entry.topic,
        sub_topic=entry.sub_topic,
        old_value=old,
        new_value=new,
        source=source.value,
        flush_id=flush_id,
        event_id=event_id,
        created_at=now,
    )
