"""The shape of each blob type's content, validated before anything is stored."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from powermemo_gql.blobs.models import BlobType
from powermemo_gql.core.validation import invalid_input_from, storable

MAX_TEXT_CHARS = 200_000
MAX_IMAGE_BYTES = 5 * 1024 * 1024


class _Content(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in JSON text (SQLite can): refused alike on both.
        return storable(value)


class ChatMessage(_Content):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    alias: str | None = Field(default=None, min_length=1, max_length=100)
    created_at: datetime | None = None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone offset")
        return value


class ChatContent(_Content):
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)


class DocumentContent(_Content):
    title: str | None = Field(default=None, max_length=500)
    content: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class CodeContent(_Content):
    language: str | None = Field(default=None, max_length=50)
    content: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class TranscriptSegment(_Content):
    speaker: str | None = Field(default=None, max_length=100)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    start_seconds: float | None = Field(default=None, ge=0)
    end_seconds: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> TranscriptSegment:
        if (
            self.start_seconds is not None
            and self.end_seconds is not None
            and self.end_seconds < self.start_seconds
        ):
            raise ValueError("endSeconds must not be before startSeconds")
        return self


class TranscriptContent(_Content):
    segments: list[TranscriptSegment] = Field(min_length=1, max_length=5000)


class ImageContent(_Content):
    url: AnyHttpUrl | None = None
    data_base64: str | None = None
    mime_type: str | None = Field(default=None, pattern=r"^image/[A-Za-z0-9.+-]+$")
    caption: str | None = Field(default=None, max_length=2000)

    @field_validator("data_base64")
    @classmethod
    def _decodes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("is not valid base64") from exc
        if len(raw) > MAX_IMAGE_BYTES:
            raise ValueError(f"decodes to {len(raw)} bytes; the limit is {MAX_IMAGE_BYTES}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ImageContent:
        if (self.url is None) == (self.data_base64 is None):
            raise ValueError("give exactly one of url and dataBase64")
        return self


CONTENT_MODELS: dict[BlobType, type[_Content]] = {
    BlobType.CHAT: ChatContent,
    BlobType.DOCUMENT: DocumentContent,
    BlobType.CODE: CodeContent,
    BlobType.TRANSCRIPT: TranscriptContent,
    BlobType.IMAGE: ImageContent,
}


def validate_content(blob_type: BlobType, raw: dict[str, Any], field: str) -> dict[str, Any]:
    """Validated content as stored (snake_case JSON); errors name the GraphQL field path."""
    try:
        content = CONTENT_MODELS[blob_type].model_validate(raw)
    except ValidationError as exc:
        raise invalid_input_from(exc, field) from exc
    return content.model_dump(mode="json", exclude_none=True)


def text_of(blob_type: BlobType, payload: dict[str, Any]) -> str:
    """The text the memory pipeline reads from a processable blob."""
    if blob_type is BlobType.CHAT:
        return "\n".join(
            f"{m.get('alias') or m['role']}: {m['content']}" for m in payload["messages"]
        )
    if blob_type is BlobType.TRANSCRIPT:
        return "\n".join(
            f"{s['speaker']}: {s['text']}" if s.get("speaker") else s["text"]
            for s in payload["segments"]
        )
    if blob_type in (BlobType.DOCUMENT, BlobType.CODE):
        title = payload.get("title")
        return f"{title}\n\n{payload['content']}" if title else str(payload["content"])
    raise ValueError(f"{blob_type} blobs carry no text")
