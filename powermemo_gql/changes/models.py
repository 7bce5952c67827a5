"""The change feed: every change to a user's memory, durable and ordered, with a cursor."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Integer, Text
from sqlmodel import Field, SQLModel

from powermemo_gql.core.types import UTCDateTime, utcnow

# BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
ChangeId = BigInteger().with_variant(Integer(), "sqlite")


class ChangeKind(StrEnum):
    ENTRY_ADDED = "entry_added"
    ENTRY_UPDATED = "entry_updated"
    ENTRY_DELETED = "entry_deleted"
    BUFFER_FLUSHED = "buffer_flushed"
    FLUSH_FAILED = "flush_failed"
    EVENT_UPDATED = "event_updated"  # old_value / new_value: the summary before / after
    EVENT_DELETED = "event_deleted"


class Change(SQLModel, table=True):
    __tablename__ = "changes"
    __table_args__ = (Index(None, "user_id", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True, sa_type=ChangeId)
    # 1, 2, 3... per user, in commit order (assigned under the user's row lock): what change
    # cursors carry. The global id would let a tenant watch the others' rate of changes.
    seq: int | None = Field(default=None, sa_type=BigInteger, nullable=False)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    kind: str = Field(max_length=32)
    entry_id: uuid.UUID | None = None
    topic: str | None = Field(default=None, max_length=100)
    sub_topic: str | None = Field(default=None, max_length=100)
    old_value: str | None = Field(default=None, sa_type=Text)
    new_value: str | None = Field(default=None, sa_type=Text)
    source: str | None = Field(default=None, max_length=16)
    flush_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
