from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlmodel import col

from powermemo_gql.blobs.models import Blob
from powermemo_gql.buffers.models import BufferItem, BufferStatus
from powermemo_gql.core.clock import db_now
from powermemo_gql.core.driver_path import DriverStatement
from powermemo_gql.core.pagination import Page, PageArgs, by_creation, paginate
from powermemo_gql.core.repository import Repository
from powermemo_gql.users.models import User

BLOBS_BY_CREATION = by_creation(Blob, "blobs:created_at")
_BLOB = Blob.__table__  # type: ignore[attr-defined]
_ITEM = BufferItem.__table__  # type: ignore[attr-defined]


def _binds(table: Any, names: Sequence[str]) -> list[BindParameter[Any]]:
    return [bindparam(f"{table.name}_{name}", type_=table.c[name].type) for name in names]


def _bound(table: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{table.name}_{name}": value for name, value in values.items()}


def _user_of(project_id: Any, external_id: Any) -> Select[Any]:
    return select(col(User.id)).where(
        col(User.project_id) == project_id, col(User.external_id) == external_id
    )


def _found_user(user_id: uuid.UUID, idle_tokens: int) -> tuple[uuid.UUID, int]:
    return user_id, int(idle_tokens)


@functools.cache
def _insert_for_user(
    blob_columns: tuple[str, ...], item_columns: tuple[str, ...] | None
) -> DriverStatement[tuple[uuid.UUID, int]]:
    """insert_for_user's one PostgreSQL statement, built once per set of columns: building
    and keying a statement of this size costs more CPU than the round trip it saves."""
    user = _user_of(bindparam("user_project_id"), bindparam("user_external_id"))
    blob_row = (
        insert(_BLOB)
        .from_select(
            [*blob_columns, "user_id"],
            user.with_only_columns(*_binds(_BLOB, blob_columns), col(User.id)),
        )
        .returning(_BLOB.c.id, _BLOB.c.user_id)
        .cte("inserted_blob")
    )
    buffered: ColumnElement[Any] = func.coalesce(
        select(func.sum(_ITEM.c.token_count))
        .where(_ITEM.c.user_id == blob_row.c.user_id, _ITEM.c.status == BufferStatus.IDLE.value)
        .scalar_subquery(),
        0,
    )
    if item_columns is not None:
        item_row = (
            insert(_ITEM)
            .from_select(
                [*item_columns, "user_id", "blob_id", "created_at"],
                select(*_binds(_ITEM, item_columns), blob_row.c.user_id, blob_row.c.id, db_now()),
            )
            .returning(_ITEM.c.token_count)
            .cte("inserted_item")
        )
        # The statement reads the table as it was before its own inserts: add the new item.
        buffered = buffered + select(item_row.c.token_count).scalar_subquery()
    return DriverStatement(select(blob_row.c.user_id, buffered), _found_user)


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

    # insertBlob's hot path: on PostgreSQL one statement finds the user, inserts the blob and
    # its buffer item and sums the user's idle buffer (data-modifying CTEs), so with the
    # BEGIN and COMMIT of its transaction an insert costs three round trips. SQLite, in
    # process, takes the same steps one by one.
    async def insert_for_user(
        self,
        project_id: uuid.UUID,
        external_id: str,
        blob: Mapping[str, Any],
        item: Mapping[str, Any] | None,
    ) -> tuple[uuid.UUID, int] | None:
        """Insert the blob (and its buffer item) for the project's user of that id.

        `blob` holds the blob's columns but user_id, `item` the item's but user_id, blob_id and
        created_at (the database's clock). Answers the user's row id and the idle tokens of its
        buffer now, or None if the project has no such user (nothing is written then)."""
        if self.session.get_bind().dialect.name != "postgresql":
            return await self._step_by_step(_user_of(project_id, external_id), blob, item)
        statement = _insert_for_user(tuple(blob), tuple(item) if item is not None else None)
        params = {"user_project_id": project_id, "user_external_id": external_id}
        params |= _bound(_BLOB, blob) | (_bound(_ITEM, item) if item is not None else {})
        return await statement.first(self.session, params)

    async def _step_by_step(
        self,
        user: Select[Any],
        blob: Mapping[str, Any],
        item: Mapping[str, Any] | None,
    ) -> tuple[uuid.UUID, int] | None:
        user_id = await self.session.scalar(user)
        if user_id is None:
            return None
        await self.session.execute(insert(_BLOB).values(**blob, user_id=user_id))
        if item is not None:
            await self.session.execute(
                insert(_ITEM).values(
                    **item, user_id=user_id, blob_id=blob["id"], created_at=db_now()
                )
            )
        buffered = await self.session.scalar(
            select(func.coalesce(func.sum(_ITEM.c.token_count), 0)).where(
                _ITEM.c.user_id == user_id, _ITEM.c.status == BufferStatus.IDLE.value
            )
        )
        return user_id, int(buffered or 0)
