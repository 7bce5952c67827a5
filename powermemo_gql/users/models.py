"""End users of a project's app, whose memory we keep."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from powermemo_gql.core.types import JSONType, UTCDateTime, new_id, utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        Index(None, "project_id", "created_at", "id"),
        Index(None, "project_id", "updated_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="projects.id", ondelete="CASCADE")
    # The id clients see and choose: unique within a project, not across projects.
    external_id: str = Field(max_length=128)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The seq of the user's latest change (changes/repository.py advances it).
    change_seq: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the reads return it: from a Core row, no ORM instance (the lookup every
    user-scoped request makes). The same attributes as User, in its table's column order;
    only writes to the user's own row need the ORM User."""

    id: uuid.UUID
    project_id: uuid.UUID
    external_id: str
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    change_seq: int


# A user read as a record, or the ORM User of a write.
UserView = User | UserRecord
