"""Objects by id, for the API's node/nodes lookups: one statement per table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from powermemo_gql.core.repository import rows_by_id

ModelT = TypeVar("ModelT", bound=SQLModel)


class NodeService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(
        self, model: type[ModelT], ids: Sequence[uuid.UUID], project_id: uuid.UUID | None
    ) -> dict[uuid.UUID, ModelT]:
        """The rows among `ids`, by id; scoped to project_id unless it is None (root's
        projects and keys)."""
        if not ids:
            return {}
        rows = await rows_by_id(self.session, model, ids, project_id)
        return {row.id: row for row in rows}  # type: ignore[attr-defined]
