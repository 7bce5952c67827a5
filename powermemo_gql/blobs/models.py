"""Raw user data as the app sent it: chats, documents, images, code, transcripts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from powermemo_gql.core.types import JSONType, UTCDateTime, new_id, utcnow


class BlobType(StrEnum):
    CHAT = "chat"
    DOCUMENT = "document"
    IMAGE = "image"
    CODE = "code"
    TRANSCRIPT = "transcript"


MAX_IDEMPOTENCY_KEY_CHARS = 128

# Blob types the memory pipeline turns into profile entries and events.
PROCESSABLE_TYPES = frozenset({BlobType.CHAT, BlobType.DOCUMENT, BlobType.TRANSCRIPT})


class Blob(SQLModel, table=True):
    __tablename__ = "blobs"
    __table_args__ = (
        Index(None, "user_id", "created_at", "id"),
        # One blob per key and user (NULL keys never collide): a retried insert finds it.
        Index(None, "user_id", "idempotency_key", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    type: str = Field(max_length=16)
    # The validated content of the blob, shaped by its type (see blobs/content.py).
    payload: dict[str, Any] = Field(sa_type=JSONType)
    # Free-form metadata the app attaches; stored and returned as given.
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Chosen by the client so that a retry of a lost answer stores nothing twice.
    idempotency_key: str | None = Field(default=None, max_length=MAX_IDEMPOTENCY_KEY_CHARS)


@dataclass(frozen=True, slots=True)
class InsertedBlob:
    """A blob just written by a Core insert, as the caller needs it back: building an ORM
    instance for it (instrumented attributes, instance state) cost a tenth of insertBlob's
    CPU. Same attributes as Blob; nothing reads it back from the database."""

    id: uuid.UUID
    project_id: uuid.UUID
    user_id: uuid.UUID
    type: str
    payload: dict[str, Any]
    fields: dict[str, Any]
    created_at: datetime
    idempotency_key: str | None = None


# What the API layer shows as a blob: a row read back, or one just inserted.
BlobView = Blob | InsertedBlob
