"""Blobs over GraphQL: one type per blob kind behind a Blob interface, one input per kind."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from powermemo_gql import errors as domain
from powermemo_gql.blobs.models import BlobType as BlobKind
from powermemo_gql.blobs.models import BlobView as BlobRow
from powermemo_gql.blobs.service import BlobService
from powermemo_gql.graphql.blob_inputs import BlobInput, ChatRole
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.enums import described_enum
from powermemo_gql.graphql.errors import InvalidInput, NotFound, domain_errors_as_results
from powermemo_gql.graphql.node import Node, decoded_id, global_id, raw_id
from powermemo_gql.graphql.pagination import query_input_errors
from powermemo_gql.usecases import UseCases

if TYPE_CHECKING:
    from powermemo_gql.graphql.users import User

BlobType = described_enum(
    BlobKind,
    name="BlobType",
    description="The kind of a blob.",
    values={
        "CHAT": "A conversation (ChatBlob); it joins the buffer, to be turned into memory.",
        "DOCUMENT": "A text (DocumentBlob); it joins the buffer.",
        "IMAGE": "An image (ImageBlob); stored only, not turned into memory.",
        "CODE": "Source code (CodeBlob); stored only, not turned into memory.",
        "TRANSCRIPT": "Timed speech (TranscriptBlob); it joins the buffer.",
    },
)


@strawberry.interface(description="Raw user data as the app sent it.")
class Blob(Node):
    row: strawberry.Private[BlobRow]

    @strawberry.field(description="The blob's global id (node(id:) fetches it again).")
    def id(self) -> strawberry.ID:
        return global_id("Blob", self.row.id)

    @strawberry.field(description="Its kind, matching its concrete type.")
    def type(self) -> BlobType:  # type: ignore[valid-type]
        return BlobKind(self.row.type)

    @strawberry.field(description="Metadata the app attached at insertion.")
    def fields(self) -> JSON:
        return JSON(self.row.fields)

    @strawberry.field(description="When the blob was inserted.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="The user the blob belongs to.")
    async def user(
        self, info: Info
    ) -> Annotated[User, strawberry.lazy("powermemo_gql.graphql.users")]:
        from powermemo_gql.graphql.users import User

        row = await info.context.loaders.user_by_row_id.load(self.row.user_id)
        assert row is not None  # the blob's user exists: deleting a user deletes its blobs
        return User(row=row)


@strawberry.type(description="One message of a chat.")
class ChatMessage:
    role: ChatRole = strawberry.field(description="Who said it.")
    content: str = strawberry.field(description="What was said.")
    alias: str | None = strawberry.field(
        description="The speaker's display name, if the app sent one."
    )
    created_at: datetime | None = strawberry.field(
        description="When the message was said, if the app sent it (distinct from insertion)."
    )


@strawberry.type(description="A conversation between the user and the assistant.")
class ChatBlob(Blob):
    @strawberry.field(description="The messages, in the order sent.")
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


@strawberry.type(description="A text document.")
class DocumentBlob(Blob):
    @strawberry.field(description="Its title, if sent.")
    def title(self) -> str | None:
        return self.row.payload.get("title")

    @strawberry.field(description="Its text.")
    def content(self) -> str:
        return str(self.row.payload["content"])


@strawberry.type(description="Source code; stored only, not turned into memory.")
class CodeBlob(Blob):
    @strawberry.field(description="Its programming language, if sent.")
    def language(self) -> str | None:
        return self.row.payload.get("language")

    @strawberry.field(description="The code.")
    def content(self) -> str:
        return str(self.row.payload["content"])


@strawberry.type(description="An image, by URL or inline; stored only, not turned into memory.")
class ImageBlob(Blob):
    @strawberry.field(description="Where the image is, when sent by URL (else null).")
    def url(self) -> str | None:
        return self.row.payload.get("url")

    @strawberry.field(description="The image's bytes in base64, when sent inline (else null).")
    def data_base64(self) -> str | None:
        return self.row.payload.get("data_base64")

    @strawberry.field(description="Its media type, e.g. image/png, if sent.")
    def mime_type(self) -> str | None:
        return self.row.payload.get("mime_type")

    @strawberry.field(description="Text about the image, if sent.")
    def caption(self) -> str | None:
        return self.row.payload.get("caption")


@strawberry.type(description="One stretch of speech in a transcript.")
class TranscriptSegment:
    speaker: str | None = strawberry.field(description="Who spoke, if sent.")
    text: str = strawberry.field(description="What was said.")
    start_seconds: float | None = strawberry.field(
        description="When it starts, in seconds from the recording's start, if sent."
    )
    end_seconds: float | None = strawberry.field(
        description="When it ends, in seconds from the recording's start, if sent."
    )


@strawberry.type(description="A transcript of speech, in timed segments.")
class TranscriptBlob(Blob):
    @strawberry.field(description="The segments, in the order sent.")
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


@strawberry.input(description="A blob to store for a user.")
class InsertBlobInput:
    user_id: strawberry.ID = strawberry.field(
        description="The app's id of the user (the one given to createUser)."
    )
    blob: BlobInput = strawberry.field(description="What to store: exactly one kind of blob.")
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


@strawberry.type(description="A blob was stored, or an earlier insert with its key replayed.")
class InsertBlobPayload:
    blob: Blob = strawberry.field(
        description="The blob stored (replayed: the one first stored with the idempotencyKey)."
    )
    replayed: bool = strawberry.field(
        description=(
            "True when nothing was stored: an earlier insert with the same idempotencyKey "
            "made this blob."
        )
    )


@strawberry.input(description="The blob to delete.")
class DeleteBlobInput:
    id: strawberry.ID = strawberry.field(description="The blob's id.")


@strawberry.type(description="A blob was deleted.")
class DeleteBlobPayload:
    deleted_blob_id: strawberry.ID = strawberry.field(description="The deleted blob's id.")


InsertBlobResult = Annotated[
    InsertBlobPayload | NotFound | InvalidInput,
    strawberry.union("InsertBlobResult", description="The blob stored, or why not."),
]
DeleteBlobResult = Annotated[
    DeleteBlobPayload | NotFound,
    strawberry.union("DeleteBlobResult", description="The blob deleted, or why not."),
]


@strawberry.type
class BlobQuery:
    @strawberry.field(description="A blob of the caller's project, or null.")
    async def blob(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The blob's global id.")],
    ) -> Blob | None:
        ctx = info.context
        try:
            with query_input_errors():
                raw = raw_id(id, "Blob", "id")
            async with ctx.uow() as session:
                row = await BlobService(session).get(ctx.project_id, raw)
        except domain.NotFound:
            return None
        return to_blob(row)


@strawberry.type
class BlobMutation:
    @strawberry.mutation(
        description=(
            "Store a blob for a user; chats, documents and transcripts join the user's buffer."
        )
    )
    @domain_errors_as_results()
    async def insert_blob(
        self,
        info: Info,
        input: Annotated[
            InsertBlobInput, strawberry.argument(description="The user and the blob.")
        ],
    ) -> InsertBlobResult:
        ctx = info.context
        kind, content = blob_content(input.blob)
        async with ctx.uow() as session:
            inserted = await UseCases(session, ctx.resources).insert_blob(
                ctx.project_id, input.user_id, kind, content, input.fields, input.idempotency_key
            )
        return InsertBlobPayload(blob=to_blob(inserted.blob), replayed=inserted.replayed)

    @strawberry.mutation(
        description="Delete a blob. What a flush already took from it stays in memory."
    )
    @domain_errors_as_results(invalid_input="top_level")
    async def delete_blob(
        self,
        info: Info,
        input: Annotated[DeleteBlobInput, strawberry.argument(description="The blob to delete.")],
    ) -> DeleteBlobResult:
        ctx = info.context
        with decoded_id(input.id, "Blob", "input.id") as raw:
            async with ctx.uow() as session:
                row = await BlobService(session).delete(ctx.project_id, raw)
        return DeleteBlobPayload(deleted_blob_id=global_id("Blob", row.id))
