"""Base repository: one session, typed access to one table. All SQL lives in repositories."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

ModelT = TypeVar("ModelT", bound=SQLModel)


class Repository(Generic[ModelT]):
    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id: uuid.UUID) -> ModelT | None:
        return await self.session.get(self.model, id)

    async def add(self, row: ModelT) -> ModelT:
        self.session.add(row)
        await self.session.flush()
        return row


async def rows_by_id(
    session: AsyncSession,
    model: type[ModelT],
    ids: Sequence[uuid.UUID],
    project_id: uuid.UUID | None,
) -> list[ModelT]:
    """Rows of `model` with these ids, in one statement; with project_id, only that
    project's (every tenant table has the column)."""
    table: Any = model
    statement = select(model).where(col(table.id).in_(ids))
    if project_id is not None:
        statement = statement.where(col(table.project_id) == project_id)
    return list((await session.scalars(statement)).all())


def parse_uuid(value: str) -> uuid.UUID | None:
    """A client-supplied id as a UUID, or None when it cannot be one (so: not found)."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        return None


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape character: backslash) matching `text` anywhere, lower-cased."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def record_columns(model: type[SQLModel], record: type[Any]) -> list[Any]:
    """The table columns of `model` named like the fields of the dataclass `record`, in its
    field order: a Core select of them gives rows to build `record(*row)` from."""
    table = model.__table__  # type: ignore[attr-defined]
    return [table.c[field.name] for field in fields(record)]
