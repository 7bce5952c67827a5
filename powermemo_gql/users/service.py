from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.pagination import Page, PageArgs
from powermemo_gql.core.validation import checked_json_object
from powermemo_gql.errors import Conflict, InvalidInput, NotFound
from powermemo_gql.profiles.models import ProfileEntryRecord
from powermemo_gql.users.models import User, UserRecord
from powermemo_gql.users.repository import UserOrderField, UserRepository

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
MAX_DATA_BYTES = 64 * 1024


def checked_user_id(value: str, field: str = "id") -> str:
    if not USER_ID_PATTERN.fullmatch(value):
        raise InvalidInput(
            field,
            "must be 1-128 characters of letters, digits and . _ : @ -, starting with a "
            "letter or digit",
        )
    return value


def _possible(external_id: str) -> bool:
    # An id no user could have (e.g. with a NUL, which PostgreSQL cannot even compare) is
    # simply not found, without asking the database.
    return USER_ID_PATTERN.fullmatch(external_id) is not None


FoundT = TypeVar("FoundT")


def _found(external_id: str, user: FoundT | None) -> FoundT:
    if user is None:
        raise NotFound("User", external_id)
    return user


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)
        self.session = session

    async def get(self, project_id: uuid.UUID, external_id: str) -> UserRecord:
        return _found(
            external_id,
            await self.users.record_by_external_id(project_id, external_id)
            if _possible(external_id)
            else None,
        )

    async def get_with_profile(
        self, project_id: uuid.UUID, external_id: str
    ) -> tuple[UserRecord, list[ProfileEntryRecord]]:
        """get, and the user's whole profile with it (one statement)."""
        return _found(
            external_id,
            await self.users.record_with_profile(project_id, external_id)
            if _possible(external_id)
            else None,
        )

    async def _get_entity(self, project_id: uuid.UUID, external_id: str) -> User:
        """The ORM User, for a write to its own row."""
        return _found(
            external_id,
            await self.users.get_by_external_id(project_id, external_id)
            if _possible(external_id)
            else None,
        )

    async def get_many(self, project_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[User]:
        return await self.users.get_many(project_id, ids)

    async def list(
        self,
        project_id: uuid.UUID,
        args: PageArgs,
        *,
        search: str | None = None,
        order_by: UserOrderField = UserOrderField.CREATED_AT,
        descending: bool = False,
    ) -> Page[User]:
        if search is not None and len(search) > 128:
            raise InvalidInput("search", "must be at most 128 characters")
        return await self.users.list(
            project_id, args, search=search, order_by=order_by, descending=descending
        )

    async def create(
        self, project_id: uuid.UUID, external_id: str | None, data: Any, *, now: datetime
    ) -> User:
        """A user created (and so last updated) at `now` (the caller's clock)."""
        external_id = checked_user_id(external_id) if external_id is not None else str(uuid.uuid4())
        data = checked_json_object({} if data is None else data, "data", MAX_DATA_BYTES)
        if await self.users.get_by_external_id(project_id, external_id) is not None:
            raise Conflict("User", external_id)
        try:
            return await self.users.add(
                User(
                    project_id=project_id,
                    external_id=external_id,
                    data=data,
                    created_at=now,
                    updated_at=now,
                )
            )
        except IntegrityError as exc:  # created concurrently
            raise Conflict("User", external_id) from exc

    async def update(
        self, project_id: uuid.UUID, external_id: str, data: Any, *, now: datetime
    ) -> User:
        """Replace the user's data; updated at `now` (the caller's clock)."""
        data = checked_json_object(data, "data", MAX_DATA_BYTES)
        user = await self._get_entity(project_id, external_id)
        user.data = data
        user.updated_at = now
        await self.session.flush()
        return user

    async def delete(self, project_id: uuid.UUID, external_id: str) -> UserRecord:
        user = await self.get(project_id, external_id)
        await self.users.delete(user)
        return user
