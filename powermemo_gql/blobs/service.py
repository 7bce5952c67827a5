from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.blobs.content import text_of, validate_content
from powermemo_gql.blobs.models import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    PROCESSABLE_TYPES,
    Blob,
    BlobType,
    BlobView,
    InsertedBlob,
)
from powermemo_gql.blobs.repository import BlobRepository
from powermemo_gql.buffers.models import BufferItem, BufferStatus
from powermemo_gql.buffers.repository import BufferRepository
from powermemo_gql.core.pagination import Page, PageArgs
from powermemo_gql.core.repository import parse_uuid
from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.core.types import new_id
from powermemo_gql.core.uow import as_one_statement
from powermemo_gql.core.validation import check_storable, checked_json_object
from powermemo_gql.errors import InvalidInput, NotFound
from powermemo_gql.users.service import USER_ID_PATTERN, UserService

MAX_FIELDS_BYTES = 16 * 1024


def checked_idempotency_key(value: str | None, field: str = "idempotencyKey") -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidInput(field, f"must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} characters")
    check_storable(value, field)
    return value


@dataclass(frozen=True)
class Inserted:
    blob: BlobView
    # True when an earlier insert with the same idempotency key is returned instead.
    replayed: bool = False
    # The user's idle buffer tokens after the insert, where the insert learnt them.
    idle_tokens: int | None = None


class BlobService:
    def __init__(self, session: AsyncSession) -> None:
        self.blobs = BlobRepository(session)
        self.buffer = BufferRepository(session)
        self.users = UserService(session)

    async def insert(
        self,
        project_id: uuid.UUID,
        user_external_id: str,
        blob_type: BlobType,
        content: dict[str, Any],
        fields: Any = None,
        idempotency_key: str | None = None,
        *,
        now: datetime,
    ) -> Inserted:
        """Store a blob created at `now` (the caller's clock); a processable one also joins
        the user's buffer with its token count.

        With an idempotency key the user already used, nothing is stored: the blob first
        inserted with it is returned (replayed), whatever this request's blob is."""
        payload = validate_content(blob_type, content, f"blob.{blob_type.value}")
        checked_fields = checked_json_object(
            {} if fields is None else fields, "fields", MAX_FIELDS_BYTES
        )
        key = checked_idempotency_key(idempotency_key)
        if key is None:
            return await self._insert(
                project_id, user_external_id, blob_type, payload, checked_fields, now
            )
        user = await self.users.get(project_id, user_external_id)
        blob = Blob(
            project_id=project_id,
            user_id=user.id,
            type=blob_type.value,
            payload=payload,
            fields=checked_fields,
            idempotency_key=key,
            created_at=now,
        )
        if (first := await self._first_with_key(blob, key)) is not None:
            return Inserted(first, replayed=True)
        if blob_type in PROCESSABLE_TYPES:
            await self.buffer.add_item(
                BufferItem(
                    project_id=project_id,
                    user_id=user.id,
                    blob_id=blob.id,
                    blob_type=blob_type.value,
                    token_count=count_tokens(text_of(blob_type, payload)),
                    updated_at=now,  # created_at: the database's clock (add_item)
                )
            )
        return Inserted(blob)

    async def _insert(
        self,
        project_id: uuid.UUID,
        user_external_id: str,
        blob_type: BlobType,
        payload: dict[str, Any],
        fields: dict[str, Any],
        now: datetime,
    ) -> Inserted:
        """Without an idempotency key: the hot path, in Core statements."""
        if not USER_ID_PATTERN.fullmatch(user_external_id):
            raise NotFound("User", user_external_id)
        values: dict[str, Any] = {
            "id": new_id(),
            "project_id": project_id,
            "type": blob_type.value,
            "payload": payload,
            "fields": fields,
            "created_at": now,
            "idempotency_key": None,
        }
        item: dict[str, Any] | None = None
        if blob_type in PROCESSABLE_TYPES:
            item = {
                "id": new_id(),
                "project_id": project_id,
                "blob_type": blob_type.value,
                "token_count": count_tokens(text_of(blob_type, payload)),
                "status": BufferStatus.IDLE.value,
                "updated_at": values["created_at"],
            }
        # The insert is this use case's one statement (see UseCases.insert_blob).
        await as_one_statement(self.blobs.session)
        found = await self.blobs.insert_for_user(project_id, user_external_id, values, item)
        if found is None:
            raise NotFound("User", user_external_id)
        user_id, idle_tokens = found
        return Inserted(InsertedBlob(**values, user_id=user_id), idle_tokens=idle_tokens)

    async def _first_with_key(self, blob: Blob, key: str) -> Blob | None:
        """Insert the blob unless its key is taken; None if inserted, else the key's blob."""
        for _ in range(3):  # a deleted blob frees its key: it may change hands meanwhile
            if await self.blobs.add_once(blob):
                return None
            if (first := await self.blobs.by_idempotency_key(blob.user_id, key)) is not None:
                return first
        raise RuntimeError(f"idempotency key {key!r} kept being taken and freed")

    async def get(self, project_id: uuid.UUID, blob_id: str) -> Blob:
        parsed = parse_uuid(blob_id)
        blob = await self.blobs.get_in_project(project_id, parsed) if parsed else None
        if blob is None:
            raise NotFound("Blob", blob_id)
        return blob

    async def list_for_user(
        self, user_id: uuid.UUID, blob_type: BlobType | None, args: PageArgs
    ) -> Page[Blob]:
        return await self.blobs.list_for_user(user_id, blob_type.value if blob_type else None, args)

    async def first_pages(
        self, user_ids: Sequence[uuid.UUID], blob_type: BlobType | None, size: int
    ) -> dict[uuid.UUID, list[Blob]]:
        """Up to size+1 oldest blobs of each user, in one query (the +1 tells if more follow)."""
        return await self.blobs.first_pages_for_users(
            user_ids, blob_type.value if blob_type else None, size
        )

    async def delete(self, project_id: uuid.UUID, blob_id: str) -> Blob:
        blob = await self.get(project_id, blob_id)
        await self.blobs.delete(blob)
        return blob
