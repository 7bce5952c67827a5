"""Blobs over GraphQL: one type per blob kind behind a Blob interface, one input per kind."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from powermemo_gql.blobs.models import Blob as BlobRow
from powermemo_gql.blobs.models import BlobType as BlobKind
from powermemo_gql.blobs.service import BlobService
from powermemo_gql.errors import DomainError, NotFound
from powermemo_gql.errors import InvalidInput as InvalidInputError
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.errors import (
    BlobNotFound,
    InvalidInput,
    UserNotFound,
    bad_user_input,
    error_result,
)
from powermemo_gql.graphql.node import Node, decoded_id, global_id, raw_id
from powermemo_gql.graphql.pagination import query_input_errors

if TYPE_CHECKING:
    from powermemo_gql.graphql.users import User

Info = strawberry.Info[Context, None]

BlobType = strawberry.enum(BlobKind, name="BlobType", description="The kind of a blob.")


@strawberry.enum
class ChatRole(Enum):
    USER = "user"
    ASSISTANT = "assistant"


@strawberry.interface(description="Raw user data as the app sent it.")
class Blob(Node):
    row: strawberry.Private[BlobRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id("Blob", self.row.id)

    @strawberry.field
    def type(self) -> BlobType:  # type: ignore[valid-type]
        return BlobKind(self.row.type)

    @strawberry.field(description="Metadata the app attached at insertion.")
    def fields(self) -> JSON:
        return JSON(self.row.fields)

    @strawberry.field(description="When the blob was inserted.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    async def user(
        self, info: Info
    ) -> Annotated[User, strawberry.lazy("powermemo_gql.graphql.users")]:
        from powermemo_gql.graphql.users import User

        row = await info.context.loaders.user_by_row_id.load(self.row.user_id)
        assert row is not None  # the blob's user exists: deleting a user deletes its blobs
        return User(row=row)


@strawberry.type
class ChatMessage:
    role: ChatRole
    content: str
    alias: str | None
    created_at: datetime | None = strawberry.field(
        description="When the message was said, if the app sent it (distinct from insertion)."
    )


@strawberry.type
class ChatBlob(Blob):
    @strawberry.field
    def messages(self) -> list[ChatMessage]:
        return [
            ChatMessage(
                role=ChatRole(m["role"]),
                content=m["content"],
                alias=m.get("alias"),
                created_at=datetime.fromisoformat(m["created_at"]) if "created_at" in m else None,
            )
            for m in self.row.payload["messages"]
        ]


@strawberry.type
class DocumentBlob(Blob):
    @strawberry.field
    def title(self) -> str | None:
        return self.row.payload.get("title")

    @strawberry.field
    def content(self) -> str:
        return str(self.row.payload["content"])


@strawberry.type
class CodeBlob(Blob):
    @strawberry.field
    def language(self) -> str | None:
        return self.row.payload.get("language")

    @strawberry.field
    def content(self) -> str:
        return str(self.row.payload["content"])


@strawberry.type
class ImageBlob(Blob):
    @strawberry.field
    def url(self) -> str | None:
        return self.row.payload.get("url")

    @strawberry.field
    def data_base64(self) -> str | None:
        return self.row.payload.get("data_base64")

    @strawberry.field
    def mime_type(self) -> str | None:
        return self.row.payload.get("mime_type")

    @strawberry.field
    def caption(self) -> str | None:
        return self.row.payload.get("caption")


@strawberry.type
class TranscriptSegment:
    speaker: str | None
    text: str
    start_seconds: float | None
    end_seconds: float | None


@strawberry.type
class TranscriptBlob(Blob):
    @strawberry.field
    def segments(self) -> list[TranscriptSegment]:
        return [
            TranscriptSegment(
                speaker=s.get("speaker"),
                text=s["text"],
                start_seconds=s.get("start_seconds"),
                end_seconds=s.get("end_seconds"),
            )
            for s in self.row.payload["segments"]
        ]


_BLOB_TYPES: dict[BlobKind, type[Blob]] = {
    BlobKind.CHAT: ChatBlob,
    BlobKind.DOCUMENT: DocumentBlob,
    BlobKind.CODE: CodeBlob,
    BlobKind.IMAGE: ImageBlob,
    BlobKind.TRANSCRIPT: TranscriptBlob,
}
ALL_BLOB_TYPES = list(_BLOB_TYPES.values())


def to_blob(row: BlobRow) -> Blob:
    return _BLOB_TYPES[BlobKind(row.type)](row=row)


# Inputs


@strawberry.input
class ChatMessageInput:
    role: ChatRole
    content: str
    alias: str | None = strawberry.field(
        default=None,
        description="Display name of the speaker, used in prompts instead of the role.",
    )
    created_at: datetime | None = strawberry.field(
        default=None, description="When the message was said (ISO 8601 with offset)."
    )


@strawberry.input
class ChatBlobInput:
    messages: list[ChatMessageInput]


@strawberry.input
class DocumentBlobInput:
    content: str
    title: str | None = None


@strawberry.input
class CodeBlobInput:
    content: str
    language: str | None = None


@strawberry.input
class ImageBlobInput:
    url: str | None = None
    data_base64: str | None = None
    mime_type: str | None = None
    caption: str | None = None


@strawberry.input
class TranscriptSegmentInput:
    text: str
    speaker: str | None = None
    start_seconds: float | None = None
    end_seconds: float | None = None


@strawberry.input
class TranscriptBlobInput:
    segments: list[TranscriptSegmentInput]


@strawberry.input(one_of=True, description="Exactly one kind of blob.")
class BlobInput:
    chat: ChatBlobInput | None = strawberry.UNSET
    document: DocumentBlobInput | None = strawberry.UNSET
    code: CodeBlobInput | None = strawberry.UNSET
    image: ImageBlobInput | None = strawberry.UNSET
    transcript: TranscriptBlobInput | None = strawberry.UNSET


@strawberry.input
class InsertBlobInput:
    user_id: strawberry.ID
    blob: BlobInput
    fields: JSON | None = strawberry.field(
        default=None, description="Metadata to keep with the blob (a JSON object)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "Any 1-128 characters, unique per user: retrying an insert with the same key "
            "stores nothing and returns the blob first inserted with it (even if this "
            "request's blob differs), as long as that blob exists."
        ),
    )


def plain_input(value: Any) -> Any:
    """An input object as plain data: dicts without unset/null fields, enum values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain_input(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) not in (None, strawberry.UNSET)
        }
    if isinstance(value, list):
        return [plain_input(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def blob_content(blob: BlobInput) -> tuple[BlobKind, dict[str, Any]]:
    kind, content = next(iter(plain_input(blob).items()))  # @oneOf: exactly one is set
    return BlobKind(kind), content


@strawberry.type
class InsertBlobPayload:
    blob: Blob
    replayed: bool = strawberry.field(
        description=(
            "True when nothing was stored: an earlier insert with the same idempotencyKey "
            "made this blob."
        )
    )


@strawberry.type
class DeleteBlobPayload:
    deleted_blob_id: strawberry.ID


InsertBlobResult = Annotated[
    InsertBlobPayload | UserNotFound | InvalidInput, strawberry.union("InsertBlobResult")
]
DeleteBlobResult = Annotated[DeleteBlobPayload | BlobNotFound, strawberry.union("DeleteBlobResult")]


@strawberry.type
class BlobQuery:
    @strawberry.field(description="A blob of the caller's project, or null.")
    async def blob(self, info: Info, id: strawberry.ID) -> Blob | None:
        ctx = info.context
        try:
            with query_input_errors():
                raw = raw_id(id, "Blob", "id")
            async with ctx.uow() as session:
                row = await BlobService(session).get(ctx.project_id, raw)
        except NotFound:
            return None
        return to_blob(row)


@strawberry.type
class BlobMutation:
    @strawberry.mutation(
        description=(
            "Store a blob for a user; chats, documents and transcripts join the user's buffer."
        )
    )
    async def insert_blob(self, info: Info, input: InsertBlobInput) -> InsertBlobResult:
        ctx = info.context
        kind, content = blob_content(input.blob)
        try:
            async with ctx.uow() as session:
                inserted = await BlobService(session).insert(
                    ctx.project_id,
                    input.user_id,
                    kind,
                    content,
                    input.fields,
                    input.idempotency_key,
                )
        except DomainError as error:
            return error_result(error)
        row = inserted.blob
        if not inserted.replayed:
            await ctx.resources.flusher.after_insert(row.project_id, row.user_id)
        return InsertBlobPayload(blob=to_blob(row), replayed=inserted.replayed)

    @strawberry.mutation
    async def delete_blob(self, info: Info, id: strawberry.ID) -> DeleteBlobResult:
        ctx = info.context
        try:
            with decoded_id(id, "Blob", "id") as raw:
                async with ctx.uow() as session:
                    row = await BlobService(session).delete(ctx.project_id, raw)
        except InvalidInputError as error:  # no InvalidInput in this union: a top-level error
            raise bad_user_input(error) from error
        except DomainError as error:
            return error_result(error)
        return DeleteBlobPayload(deleted_blob_id=global_id("Blob", row.id))
