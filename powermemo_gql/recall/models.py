"""What recall stores: the facts of each event, and one vector per indexed row."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, LargeBinary, Text
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType
from sqlmodel import Field, SQLModel

from powermemo_gql.core.types import JSONType, UTCDateTime, new_id, utcnow


class RecallKind(StrEnum):
    PROFILE = "profile"
    EVENT = "event"
    FACT = "fact"


class EventFact(SQLModel, table=True):
    """One dated fact line of an event's summary ("- Went hiking [said 2024-03-06]")."""

    __tablename__ = "event_facts"
    __table_args__ = (Index(None, "user_id", "happened_from"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    event_id: uuid.UUID = Field(foreign_key="events.id", ondelete="CASCADE", index=True)
    position: int = 0  # the line's place in the summary
    content: str = Field(sa_type=Text)
    happened_from: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    happened_to: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    source_blob_ids: list[str] = Field(default_factory=list, sa_type=JSONType)
    # The model of its vector; None: not embedded yet (the indexer picks it up).
    embedded_model: str | None = Field(default=None, max_length=128, index=True)
    # The flush that wrote it, to charge for embedding it (Flush.embedding_tokens); cleared
    # once charged, and by an edit. Not a foreign key: charging a flush that is gone updates
    # nothing.
    embedding_flush_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MemoryVector(SQLModel, table=True):
    """The embedding of one profile entry, event or fact, and what made it.

    The seam for pgvector: search reads vectors only through RecallRepository.vectors.
    """

    __tablename__ = "memory_vectors"
    __table_args__ = (Index(None, "user_id", "model", "kind"),)

    kind: str = Field(primary_key=True, max_length=16)
    # Not a foreign key (it points into one of three tables): orphans are pruned on indexing
    # and never returned, since search joins the live rows.
    target_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", index=True)
    model: str = Field(max_length=128)
    dimensions: int
    # float32, little-endian, L2-normalised.
    vector: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class VectorType(UserDefinedType[Any]):
    """pgvector's `vector`, of the optional memory_vectors.embedding (recall/pgvector.py)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"


# Reflecting a database that has the column (the migration drift check) knows its type.
ischema_names.setdefault("vector", VectorType)


class MemoryVectorVersion(SQLModel, table=True):
    """Bumped with every change to a user's vectors: search processes keep the user's vectors
    in memory and reload them only when this moved (one indexed lookup per search)."""

    __tablename__ = "memory_vector_versions"

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    version: int = 0


class EmbeddingUsage(SQLModel, table=True):
    """What indexing a project's memory has cost: texts embedded and the tokens the provider
    reported (0 where it reports none, as the local model). Query embeddings are counted in
    the metrics only: a write per search would cost every search."""

    __tablename__ = "embedding_usage"

    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE", primary_key=True)
    texts: int = 0
    tokens: int = 0
