from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from powermemo_gql.blobs.models import Blob
from powermemo_gql.core.pagination import Page, PageArgs, by_creation, paginate
from powermemo_gql.core.repository import Repository

BLOBS_BY_CREATION = by_creation(Blob, "blobs:created_at")


class BlobRepository(Repository[Blob]):
    model = Blob

    async def get_in_project(self, project_id: uuid.UUID, blob_id: uuid.UUID) -> Blob | None:
        return await self.session.scalar(
            select(Blob).where(col(Blob.id) == blob_id, col(Blob.project_id) == project_id)
        )

    async def add_once(self, blob: Blob) -> bool:
        """Insert a blob that has an idempotency key, unless the user already has one with
        that key (False then). One statement: a concurrent insert of the same key waits for
        the other to commit, then finds the key taken, without an error to recover from."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        inserted = await self.session.scalar(
            insert(Blob)
            .values({name: getattr(blob, name) for name in Blob.model_fields})
            .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
            .returning(col(Blob.id))
        )
        return inserted is not None

    async def by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Blob | None:
        return await self.session.scalar(
            select(Blob).where(col(Blob.user_id) == user_id, col(Blob.idempotency_key) == key)
        )

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Blob]:
        rows = await self.session.scalars(select(Blob).where(col(Blob.id).in_(ids)))
        return list(rows.all())

    async def list_for_user(
        self, user_id: uuid.UUID, blob_type: str | None, args: PageArgs
    ) -> Page[Blob]:
        stmt = select(Blob).where(col(Blob.user_id) == user_id)
        if blob_type is not None:
            stmt = stmt.where(col(Blob.type) == blob_type)
        return await paginate(self.session, stmt, BLOBS_BY_CREATION, args)

    async def first_pages_for_users(
        self, user_ids: Sequence[uuid.UUID], blob_type: str | None, size: int
    ) -> dict[uuid.UUID, list[Blob]]:
        """The first `size` (+1, to tell if more follow) blobs of many users in one query."""
        position = (
            func.row_number()
            .over(partition_by=col(Blob.user_id), order_by=(col(Blob.created_at), col(Blob.id)))
            .label("position")
        )
        ranked = select(Blob, position).where(col(Blob.user_id).in_(user_ids))
        if blob_type is not None:
            ranked = ranked.where(col(Blob.type) == blob_type)
        inner = ranked.subquery()
        stmt = (
            select(Blob)
            .join(inner, col(Blob.id) == inner.c.id)
            .where(inner.c.position <= size + 1)
            .order_by(col(Blob.user_id), col(Blob.created_at), col(Blob.id))
        )
        pages: dict[uuid.UUID, list[Blob]] = {user_id: [] for user_id in user_ids}
        for blob in (await self.session.scalars(stmt)).all():
            pages[blob.user_id].append(blob)
        return pages

    async def delete(self, blob: Blob) -> None:
        await self.session.execute(delete(Blob).where(col(Blob.id) == blob.id))
