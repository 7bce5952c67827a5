from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.blobs.content import text_of, validate_content
from powermemo_gql.blobs.models import PROCESSABLE_TYPES, Blob, BlobType
from powermemo_gql.blobs.repository import BlobRepository
from powermemo_gql.buffers.models import BufferItem
from powermemo_gql.buffers.repository import BufferRepository
from powermemo_gql.core.pagination import Page, PageArgs
from powermemo_gql.core.repository import parse_uuid
from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.core.validation import checked_json_object
from powermemo_gql.errors import NotFound
from powermemo_gql.users.service import UserService

MAX_FIELDS_BYTES = 16 * 1024


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
    ) -> Blob:
        """Store a blob; a processable one also joins the user's buffer with its token count."""
        payload = validate_content(blob_type, content, f"blob.{blob_type.value}")
        checked_fields = checked_json_object(
            {} if fields is None else fields, "fields", MAX_FIELDS_BYTES
        )
        user = await self.users.get(project_id, user_external_id)
        blob = await self.blobs.add(
            Blob(
                project_id=project_id,
                user_id=user.id,
                type=blob_type.value,
                payload=payload,
                fields=checked_fields,
            )
        )
        if blob_type in PROCESSABLE_TYPES:
            await self.buffer.add(
                BufferItem(
                    project_id=project_id,
                    user_id=user.id,
                    blob_id=blob.id,
                    blob_type=blob_type.value,
                    token_count=count_tokens(text_of(blob_type, payload)),
                )
            )
        return blob

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
