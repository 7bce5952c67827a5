from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlmodel import col

from powermemo_gql.core.pagination import Page, PageArgs, by_creation, paginate
from powermemo_gql.core.repository import Repository
from powermemo_gql.projects.models import ApiKey, Project

PROJECTS_BY_CREATION = by_creation(Project, "projects:created_at")


class ProjectRepository(Repository[Project]):
    model = Project

    async def get_by_name(self, name: str) -> Project | None:
        return await self.session.scalar(select(Project).where(col(Project.name) == name))

    async def list(self, args: PageArgs) -> Page[Project]:
        return await paginate(self.session, select(Project), PROJECTS_BY_CREATION, args)


class ActiveKey(NamedTuple):
    id: uuid.UUID
    project_id: uuid.UUID


# Built once: building a statement costs more CPU than running it.
_ACTIVE_BY_HASH = select(col(ApiKey.id), col(ApiKey.project_id)).where(
    col(ApiKey.key_hash) == bindparam("key_hash"), col(ApiKey.revoked_at).is_(None)
)


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    async def active_by_hash(self, key_hash: str) -> ActiveKey | None:
        """The (key id, project id) of the active key with this hash: a Core row, since a
        request whose key is not cached yet waits on it."""
        row = (await self.session.execute(_ACTIVE_BY_HASH, {"key_hash": key_hash})).first()
        return None if row is None else ActiveKey(row[0], row[1])

    async def list_for_project(self, project_id: uuid.UUID) -> list[ApiKey]:
        rows = await self.session.scalars(
            select(ApiKey)
            .where(col(ApiKey.project_id) == project_id)
            .order_by(col(ApiKey.created_at), col(ApiKey.id))
        )
        return list(rows.all())

    async def list_for_projects(
        self, project_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ApiKey]]:
        found: dict[uuid.UUID, list[ApiKey]] = {project_id: [] for project_id in project_ids}
        rows = await self.session.scalars(
            select(ApiKey)
            .where(col(ApiKey.project_id).in_(project_ids))
            .order_by(col(ApiKey.created_at), col(ApiKey.id))
        )
        for row in rows.all():
            found[row.project_id].append(row)
        return found

    async def active_ids(self, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `ids` that name a key still active (not revoked, project not gone)."""
        if not ids:
            return set()
        stmt = select(col(ApiKey.id)).where(
            col(ApiKey.id).in_(ids), col(ApiKey.revoked_at).is_(None)
        )
        # Only the revocation watch's periodic rechecks ask this: marked as background work
        # (tests that count a request's statements leave it out).
        rows = await self.session.scalars(stmt.execution_options(background=True))
        return set(rows.all())
