"""The timeline of what happened to a user, one event per processed buffer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from powermemo_gql.core.types import JSONType, UTCDateTime, new_id, utcnow


class DeltaAction(StrEnum):
    """What a flush did to a profile entry (an item of Event.profile_delta)."""

    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index(None, "user_id", "created_at", "id"),
        # Timelines list events by when they happened.
        Index(None, "user_id", "happened_from", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    summary: str = Field(sa_type=Text)
    tags: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    # The profile changes this event caused: [{"action" (DeltaAction), "topic", "sub_topic",
    # "content" (after; "" when deleted), "previous" (before; null when added)}].
    profile_delta: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    # When what it tells of was said: the first and last time of its messages (a message's
    # created_at, else its blob's insertion), apart from when the event was written.
    happened_from: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    happened_to: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The model of its vector; None: new or changed, not embedded yet (recall/index.py).
    embedded_model: str | None = Field(default=None, max_length=128, index=True)
    # The flush that wrote it, to charge for embedding it (Flush.embedding_tokens); cleared
    # once charged, and by an edit. Not a foreign key: charging a flush that is gone updates
    # nothing.
    embedding_flush_id: uuid.UUID | None = Field(default=None)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as the reads return it: from a Core row, no ORM instance (timelines, their
    DataLoaders, the context). The same attributes as Event, in its table's column order;
    only writes (editing, deleting an event) need the ORM Event."""

    id: uuid.UUID
    project_id: uuid.UUID
    user_id: uuid.UUID
    summary: str
    tags: list[dict[str, Any]]
    profile_delta: list[dict[str, Any]]
    happened_from: datetime
    happened_to: datetime
    created_at: datetime
    embedded_model: str | None
    embedding_flush_id: uuid.UUID | None


# An event read as a record, or the ORM Event of a write (or of a search hit, a node).
EventView = Event | EventRecord
