"""Base repository: one session, typed access to one table. All SQL lives in repositories."""

from __future__ import annotations

import uuid
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

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
