"""The input of each blob kind (insertBlob's BlobInput), and the chat roles they share with
ChatMessage."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from powermemo_gql.blobs.content import MAX_IMAGE_BYTES, MAX_TEXT_CHARS


@strawberry.enum(description="Who said a chat message.")
class ChatRole(Enum):
    USER = strawberry.enum_value("user", description="The user whose memory this is.")
    ASSISTANT = strawberry.enum_value("assistant", description="The app's assistant.")


@strawberry.input(description="One message of a chat.")
class ChatMessageInput:
    role: ChatRole = strawberry.field(description="Who said it.")
    content: str = strawberry.field(description=f"What was said: 1 to {MAX_TEXT_CHARS} characters.")
    alias: str | None = strawberry.field(
        default=None,
        description=(
            "Display name of the speaker (at most 100 characters), used in prompts instead "
            "of the role."
        ),
    )
    created_at: datetime | None = strawberry.field(
        default=None, description="When the message was said (ISO 8601 with offset)."
    )


@strawberry.input(description="A conversation between the user and the assistant.")
class ChatBlobInput:
    messages: list[ChatMessageInput] = strawberry.field(
        description="1 to 500 messages, in the order said."
    )


@strawberry.input(description="A text document.")
class DocumentBlobInput:
    content: str = strawberry.field(description=f"The text: 1 to {MAX_TEXT_CHARS} characters.")
    title: str | None = strawberry.field(
        default=None,
        description="At most 500 characters; the pipeline reads it before the text.",
    )


@strawberry.input(description="Source code (stored only).")
class CodeBlobInput:
    content: str = strawberry.field(description=f"The code: 1 to {MAX_TEXT_CHARS} characters.")
    language: str | None = strawberry.field(
        default=None, description="Its programming language: at most 50 characters."
    )


@strawberry.input(description="An image (stored only): exactly one of url and dataBase64.")
class ImageBlobInput:
    url: str | None = strawberry.field(default=None, description="An http(s) URL of the image.")
    data_base64: str | None = strawberry.field(
        default=None,
        description=f"The image's bytes in base64: at most {MAX_IMAGE_BYTES} bytes decoded.",
    )
    mime_type: str | None = strawberry.field(
        default=None, description="Its media type: image/<subtype>, e.g. image/png."
    )
    caption: str | None = strawberry.field(
        default=None, description="Text about the image: at most 2000 characters."
    )


@strawberry.input(description="One stretch of speech in a transcript.")
class TranscriptSegmentInput:
    text: str = strawberry.field(description=f"What was said: 1 to {MAX_TEXT_CHARS} characters.")
    speaker: str | None = strawberry.field(
        default=None,
        description="Who spoke: at most 100 characters; the pipeline reads 'speaker: text'.",
    )
    start_seconds: float | None = strawberry.field(
        default=None,
        description="When it starts, in seconds from the recording's start (0 or more).",
    )
    end_seconds: float | None = strawberry.field(
        default=None, description="When it ends, in seconds; not before startSeconds."
    )


@strawberry.input(description="A transcript of speech.")
class TranscriptBlobInput:
    segments: list[TranscriptSegmentInput] = strawberry.field(
        description="1 to 5000 segments, in order."
    )


@strawberry.input(one_of=True, description="Exactly one kind of blob.")
class BlobInput:
    chat: ChatBlobInput | None = strawberry.field(
        default=strawberry.UNSET, description="A conversation (it joins the buffer)."
    )
    document: DocumentBlobInput | None = strawberry.field(
        default=strawberry.UNSET, description="A text (it joins the buffer)."
    )
    code: CodeBlobInput | None = strawberry.field(
        default=strawberry.UNSET, description="Source code (stored only)."
    )
    image: ImageBlobInput | None = strawberry.field(
        default=strawberry.UNSET, description="An image (stored only)."
    )
    transcript: TranscriptBlobInput | None = strawberry.field(
        default=strawberry.UNSET, description="A transcript (it joins the buffer)."
    )
