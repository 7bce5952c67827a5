from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlmodel import col

from powermemo_gql.core.driver_path import DriverStatement
from powermemo_gql.core.pagination import (
    KeysetOrder,
    Page,
    PageArgs,
    datetime_key,
    paginate,
    text_key,
)
from powermemo_gql.core.repository import Repository, like_pattern, record_columns
from powermemo_gql.profiles.models import ProfileEntry, ProfileEntryRecord
from powermemo_gql.users.models import User, UserRecord, UserView


class UserOrderField(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    ID = "id"


def _order(field: UserOrderField, descending: bool) -> KeysetOrder[User]:
    tag = f"users:{field.value}:{'desc' if descending else 'asc'}"
    if field is UserOrderField.ID:
        # external_id is unique within a project, so the row id only breaks impossible ties.
        return KeysetOrder(
            tag=tag,
            sort=col(User.external_id),
            tiebreak=col(User.id),
            descending=descending,
            sort_value=lambda u: u.external_id,
            tiebreak_value=lambda u: u.id,
            parse_sort=text_key,
            parse_tiebreak=uuid.UUID,
        )
    column = col(User.created_at) if field is UserOrderField.CREATED_AT else col(User.updated_at)
    return KeysetOrder(
        tag=tag,
        sort=column,
        tiebreak=col(User.id),
        descending=descending,
        sort_value=lambda u: getattr(u, field.value),
        tiebreak_value=lambda u: u.id,
        parse_sort=datetime_key,
        parse_tiebreak=uuid.UUID,
    )


# Built once: every user-scoped request looks its user up, and building the statement (and its
# cache key) each time cost more CPU than running it.
_BY_EXTERNAL_ID = select(User).where(
    col(User.project_id) == bindparam("project_id"),
    col(User.external_id) == bindparam("external_id"),
)
_RECORD_BY_EXTERNAL_ID = DriverStatement(
    _BY_EXTERNAL_ID.with_only_columns(*record_columns(User, UserRecord)), UserRecord
)

# `user(userId) { profile { ... } }`, the commonest query, in one statement (one round trip
# instead of two): the user's columns, then one entry's (none where the user has none).
_USERS = User.__table__  # type: ignore[attr-defined]
_ENTRIES = ProfileEntry.__table__  # type: ignore[attr-defined]
_USER_FIELDS = len(fields(UserRecord))


def _user_and_entry(*values: Any) -> tuple[UserRecord, ProfileEntryRecord | None]:
    user, entry = values[:_USER_FIELDS], values[_USER_FIELDS:]
    return UserRecord(*user), None if entry[0] is None else ProfileEntryRecord(*entry)


_WITH_PROFILE = DriverStatement(
    select(*record_columns(User, UserRecord), *record_columns(ProfileEntry, ProfileEntryRecord))
    .select_from(_USERS.outerjoin(_ENTRIES, _ENTRIES.c.user_id == _USERS.c.id))
    .where(
        _USERS.c.project_id == bindparam("project_id"),
        _USERS.c.external_id == bindparam("external_id"),
    )
    .order_by(_ENTRIES.c.topic, _ENTRIES.c.sub_topic, _ENTRIES.c.id),
    _user_and_entry,
)


class UserRepository(Repository[User]):
    model = User

    async def lock(self, user_id: uuid.UUID) -> None:
        """Take the user's row lock for the rest of the transaction (PostgreSQL; SQLite
        serializes writers anyway). Every write transaction of a user takes it first, before
        inserting rows that refer to the user: rows referring to it take FOR KEY SHARE, and
        two transactions each holding that while asking for a stronger lock deadlock.
        FOR NO KEY UPDATE queues writers of the user one behind the other, yet lets other
        transactions keep inserting rows that refer to the user."""
        await self.session.execute(
            select(col(User.id)).where(col(User.id) == user_id).with_for_update(key_share=True)
        )

    async def record_by_external_id(
        self, project_id: uuid.UUID, external_id: str
    ) -> UserRecord | None:
        """get_by_external_id for reading only: a Core row."""
        return await _RECORD_BY_EXTERNAL_ID.first(
            self.session, {"project_id": project_id, "external_id": external_id}
        )

    async def record_with_profile(
        self, project_id: uuid.UUID, external_id: str
    ) -> tuple[UserRecord, list[ProfileEntryRecord]] | None:
        """record_by_external_id and the user's whole profile (in slot order), at once."""
        rows = await _WITH_PROFILE.all(
            self.session, {"project_id": project_id, "external_id": external_id}
        )
        if not rows:
            return None
        return rows[0][0], [entry for _user, entry in rows if entry is not None]

    async def get_by_external_id(self, project_id: uuid.UUID, external_id: str) -> User | None:
        return await self.session.scalar(
            _BY_EXTERNAL_ID, {"project_id": project_id, "external_id": external_id}
        )

    async def get_many(self, project_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[User]:
        rows = await self.session.scalars(
            select(User).where(col(User.project_id) == project_id, col(User.id).in_(ids))
        )
        return list(rows.all())

    async def list(
        self,
        project_id: uuid.UUID,
        args: PageArgs,
        *,
        search: str | None,
        order_by: UserOrderField,
        descending: bool,
    ) -> Page[User]:
        stmt = select(User).where(col(User.project_id) == project_id)
        if search:
            stmt = stmt.where(
                func.lower(col(User.external_id)).like(like_pattern(search), escape="\\")
            )
        return await paginate(self.session, stmt, _order(order_by, descending), args)

    async def delete(self, user: UserView) -> None:
        # Blobs, buffer items, profile entries and events go with it: ON DELETE CASCADE.
        await self.session.execute(delete(User).where(col(User.id) == user.id))
