"""A user's buffer: processable blobs waiting to be turned into memory."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from powermemo_gql.core.types import UTCDateTime, new_id, utcnow


class BufferStatus(StrEnum):
    IDLE = "idle"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class BufferItem(SQLModel, table=True):
    __tablename__ = "buffer_items"
    __table_args__ = (Index(None, "user_id", "status", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    blob_id: uuid.UUID = Field(foreign_key="blobs.id", ondelete="CASCADE", unique=True)
    blob_type: str = Field(max_length=16)
    token_count: int = Field(ge=0)
    status: str = Field(default=BufferStatus.IDLE.value, max_length=16)
    # The flush that claimed this item (processing) or last tried it (done / failed).
    flush_id: uuid.UUID | None = Field(
        default=None, foreign_key="flushes.id", ondelete="SET NULL", index=True
    )
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FlushStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ABANDONED = "abandoned"  # its process died; its items went back to idle


class FlushTrigger(StrEnum):
    SIZE = "size"  # the buffer passed max_buffer_tokens
    IDLE = "idle"  # nothing new for buffer_flush_interval
    MANUAL = "manual"  # the flushBuffer mutation
    RETRY = "retry"  # failed items retried by mutation
    RECOVERY = "recovery"  # items of an abandoned flush, flushed again
    IMPORT = "import"  # importProfile: text, not buffer items


class Flush(SQLModel, table=True):
    """One run of the memory pipeline over a user's buffer, with what it cost."""

    __tablename__ = "flushes"
    __table_args__ = (Index(None, "user_id", "started_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    trigger: str = Field(max_length=16)
    status: str = Field(default=FlushStatus.RUNNING.value, max_length=16, index=True)
    item_count: int = Field(default=0, ge=0)
    llm_calls: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    # Items of LLM answers left out because they did not parse (the rest was kept).
    dropped_items: int = Field(default=0, ge=0)
    # What embedding the rows it wrote cost (recall/index.py adds it when their vectors are
    # stored); the same tokens are in the project's embedding usage.
    embedding_texts: int = Field(default=0, ge=0)
    embedding_tokens: int = Field(default=0, ge=0)
    error: str | None = Field(default=None, sa_type=Text)
    event_id: uuid.UUID | None = Field(default=None)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FlushLock(SQLModel, table=True):
    """A per-user lease: at most one flush per user at a time, across server instances.

    A row is the lock; it expires unless its holder renews it, so a crashed holder
    frees the user after at most one lease.
    """

    __tablename__ = "flush_locks"

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    flush_id: uuid.UUID
    expires_at: datetime = Field(sa_type=UTCDateTime)


class PipelineStep(StrEnum):
    """The steps whose LLM calls are counted (FlushStepUsage.step)."""

    SUMMARIZE = "summarize"
    EXTRACT = "extract"
    MERGE = "merge"
    ORGANIZE = "organize"
    SHORTEN = "shorten"
    TAG_EVENT = "tag_event"
    OTHER = "other"  # a call made without a purpose


class FlushStepUsage(SQLModel, table=True):
    """What one pipeline step (summarize, extract, merge, ...) of a flush cost."""

    __tablename__ = "flush_step_usage"

    flush_id: uuid.UUID = Field(foreign_key="flushes.id", ondelete="CASCADE", primary_key=True)
    step: str = Field(max_length=32, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    calls: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
