"""Blob content: validation into the stored shape, error paths, and the text the pipeline reads."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from powermemo_gql.blobs.content import MAX_IMAGE_BYTES, text_of, validate_content
from powermemo_gql.blobs.models import BlobType
from powermemo_gql.errors import InvalidInput

PNG_BASE64 = "iVBORw0KGgo="  # the PNG signature


def rejected_field(blob_type: BlobType, raw: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate_content(blob_type, raw, f"blob.{blob_type.value}")
    return caught.value


# Stored shape


def test_chat_is_stored_as_snake_case_json_without_nulls() -> None:
    stored = validate_content(
        BlobType.CHAT,
        {
            "messages": [
                {
                    "role": "user",
                    "content": "I moved to Lyon",
                    "alias": "Zoë",
                    "created_at": datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=2))),
                },
                {"role": "assistant", "content": "Nice!", "alias": None, "created_at": None},
            ]
        },
        "blob.chat",
    )

    assert stored == {
        "messages": [
            {
                "role": "user",
                "content": "I moved to Lyon",
                "alias": "Zoë",
                "created_at": "2024-05-01T10:00:00+02:00",
            },
            {"role": "assistant", "content": "Nice!"},
        ]
    }


def test_chat_created_at_keeps_its_offset_when_given_as_a_string() -> None:
    stored = validate_content(
        BlobType.CHAT,
        {"messages": [{"role": "user", "content": "hi", "created_at": "2024-05-01T10:00:00Z"}]},
        "blob.chat",
    )

    created_at = datetime.fromisoformat(stored["messages"][0]["created_at"])
    assert created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_transcript_is_stored_with_snake_case_keys_and_float_seconds() -> None:
    stored = validate_content(
        BlobType.TRANSCRIPT,
        {
            "segments": [
                {"text": "Hello", "speaker": "Ana", "start_seconds": 0, "end_seconds": 1.5},
                {"text": "Hi", "speaker": None},
            ]
        },
        "blob.transcript",
    )

    assert stored == {
        "segments": [
            {"speaker": "Ana", "text": "Hello", "start_seconds": 0.0, "end_seconds": 1.5},
            {"text": "Hi"},
        ]
    }


def test_image_is_stored_with_snake_case_keys() -> None:
    stored = validate_content(
        BlobType.IMAGE,
        {"data_base64": PNG_BASE64, "mime_type": "image/png", "caption": "a cat", "url": None},
        "blob.image",
    )

    assert stored == {"data_base64": PNG_BASE64, "mime_type": "image/png", "caption": "a cat"}


def test_document_and_code_drop_missing_optional_fields() -> None:
    assert validate_content(BlobType.DOCUMENT, {"content": "Body", "title": None}, "d") == {
        "content": "Body"
    }
    assert validate_content(BlobType.CODE, {"content": "x = 1", "language": "python"}, "c") == {
        "content": "x = 1",
        "language": "python",
    }


# Rejections: the field path is the GraphQL one (camelCase, [index])


@pytest.mark.parametrize(
    ("blob_type", "raw", "field"),
    [
        pytest.param(BlobType.CHAT, {"messages": []}, "blob.chat.messages", id="no-messages"),
        pytest.param(
            BlobType.CHAT,
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": ""}]},
            "blob.chat.messages[1].content",
            id="empty-second-content",
        ),
        pytest.param(
            BlobType.CHAT,
            {"messages": [{"role": "system", "content": "a"}]},
            "blob.chat.messages[0].role",
            id="unknown-role",
        ),
        pytest.param(
            BlobType.CHAT,
            {"messages": [{"role": "user", "content": "a", "alias": ""}]},
            "blob.chat.messages[0].alias",
            id="empty-alias",
        ),
        pytest.param(
            BlobType.CHAT,
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": "b"},
                    {"role": "user", "content": "c", "created_at": "2024-05-01T10:00:00"},
                ]
            },
            "blob.chat.messages[2].createdAt",
            id="created-at-without-offset",
        ),
        pytest.param(BlobType.DOCUMENT, {"content": ""}, "blob.document.content", id="doc-empty"),
        pytest.param(BlobType.CODE, {"language": "py"}, "blob.code.content", id="code-missing"),
        pytest.param(
            BlobType.IMAGE,
            {"url": "https://example.com/a.png", "data_base64": PNG_BASE64},
            "blob.image",
            id="image-both-sources",
        ),
        pytest.param(BlobType.IMAGE, {"caption": "x"}, "blob.image", id="image-no-source"),
        pytest.param(
            BlobType.IMAGE,
            {"data_base64": "not base64!"},
            "blob.image.dataBase64",
            id="image-bad-base64",
        ),
        pytest.param(
            BlobType.IMAGE, {"url": "ftp://example.com/a.png"}, "blob.image.url", id="image-ftp"
        ),
        pytest.param(
            BlobType.IMAGE,
            {"url": "https://example.com/a.png", "mime_type": "text/plain"},
            "blob.image.mimeType",
            id="image-not-an-image-type",
        ),
        pytest.param(
            BlobType.TRANSCRIPT,
            {"segments": [{"text": "a"}, {"text": "b", "start_seconds": 5, "end_seconds": 2}]},
            "blob.transcript.segments[1]",
            id="transcript-ends-before-start",
        ),
        pytest.param(
            BlobType.TRANSCRIPT,
            {"segments": [{"text": "a", "start_seconds": -1}]},
            "blob.transcript.segments[0].startSeconds",
            id="transcript-negative-start",
        ),
        pytest.param(
            BlobType.TRANSCRIPT, {"segments": []}, "blob.transcript.segments", id="no-segments"
        ),
    ],
)
def test_invalid_content_names_the_graphql_field(
    blob_type: BlobType, raw: dict[str, Any], field: str
) -> None:
    error = rejected_field(blob_type, raw)

    assert error.field == field
    assert error.code == "INVALID_INPUT"
    assert error.message.startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("blob_type", "raw", "field"),
    [
        pytest.param(
            BlobType.CHAT,
            {"messages": [{"role": "user", "content": "a\x00b"}]},
            "blob.chat.messages[0].content",
            id="chat-content",
        ),
        pytest.param(
            BlobType.CHAT,
            {"messages": [{"role": "user", "content": "a", "alias": "Z\x00"}]},
            "blob.chat.messages[0].alias",
            id="chat-alias",
        ),
        pytest.param(
            BlobType.DOCUMENT, {"content": "a", "title": "\x00"}, "blob.document.title", id="title"
        ),
        pytest.param(BlobType.CODE, {"content": "\x00"}, "blob.code.content", id="code"),
        pytest.param(
            BlobType.IMAGE,
            {"url": "https://example.com/a.png", "caption": "a\x00"},
            "blob.image.caption",
            id="caption",
        ),
        pytest.param(
            BlobType.TRANSCRIPT,
            {"segments": [{"text": "a", "speaker": "A\x00"}]},
            "blob.transcript.segments[0].speaker",
            id="speaker",
        ),
    ],
)
def test_nul_characters_are_rejected(blob_type: BlobType, raw: dict[str, Any], field: str) -> None:
    # PostgreSQL cannot store NUL in JSON; refusing it keeps both databases alike.
    error = rejected_field(blob_type, raw)

    assert error.field == field
    assert error.reason == "must not contain NUL characters"


def test_created_at_without_offset_says_why() -> None:
    error = rejected_field(
        BlobType.CHAT,
        {"messages": [{"role": "user", "content": "a", "created_at": "2024-05-01T10:00:00"}]},
    )

    assert error.reason == "must include a time zone offset"  # no "Value error, " prefix


def test_image_with_both_sources_says_to_give_one() -> None:
    error = rejected_field(
        BlobType.IMAGE, {"url": "https://example.com/a.png", "data_base64": PNG_BASE64}
    )

    assert error.reason == "give exactly one of url and dataBase64"


def test_image_over_the_size_limit_is_rejected() -> None:
    oversized = base64.b64encode(b"\0" * (MAX_IMAGE_BYTES + 1)).decode()

    error = rejected_field(BlobType.IMAGE, {"data_base64": oversized})

    assert error.field == "blob.image.dataBase64"
    assert str(MAX_IMAGE_BYTES) in error.reason


@pytest.mark.parametrize(
    ("blob_type", "raw", "field"),
    [
        pytest.param(
            BlobType.CHAT,
            {"messages": [{"role": "user", "content": "a", "mood_score": 3}]},
            "blob.chat.messages[0].moodScore",
            id="chat-message",
        ),
        pytest.param(
            BlobType.DOCUMENT,
            {"content": "a", "page_count": 1},
            "blob.document.pageCount",
            id="doc",
        ),
        pytest.param(BlobType.CODE, {"content": "a", "path": "x.py"}, "blob.code.path", id="code"),
        pytest.param(
            BlobType.IMAGE,
            {"url": "https://example.com/a.png", "width": 3},
            "blob.image.width",
            id="image",
        ),
        pytest.param(
            BlobType.TRANSCRIPT,
            {"segments": [{"text": "a", "confidence": 0.9}]},
            "blob.transcript.segments[0].confidence",
            id="transcript-segment",
        ),
    ],
)
def test_unknown_keys_are_rejected(blob_type: BlobType, raw: dict[str, Any], field: str) -> None:
    assert rejected_field(blob_type, raw).field == field


def test_error_path_uses_the_given_prefix() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_content(BlobType.DOCUMENT, {"content": ""}, "input.blob.document")

    assert caught.value.field == "input.blob.document.content"


# The text the memory pipeline reads


def test_chat_text_names_each_speaker_by_alias_or_role() -> None:
    payload = {
        "messages": [
            {"role": "user", "content": "I moved to Lyon", "alias": "Zoë"},
            {"role": "assistant", "content": "Nice!"},
            {"role": "user", "content": "Thanks"},
        ]
    }

    assert text_of(BlobType.CHAT, payload) == "Zoë: I moved to Lyon\nassistant: Nice!\nuser: Thanks"


def test_transcript_text_prefixes_the_speaker_when_known() -> None:
    payload = {"segments": [{"speaker": "Ana", "text": "Hello"}, {"text": "(applause)"}]}

    assert text_of(BlobType.TRANSCRIPT, payload) == "Ana: Hello\n(applause)"


def test_document_text_is_title_then_content() -> None:
    with_title = {"title": "Notes", "content": "Buy milk"}
    without_title = {"content": "Buy milk"}

    assert text_of(BlobType.DOCUMENT, with_title) == "Notes\n\nBuy milk"
    assert text_of(BlobType.DOCUMENT, without_title) == "Buy milk"


def test_code_text_is_its_content() -> None:
    assert text_of(BlobType.CODE, {"language": "python", "content": "x = 1"}) == "x = 1"


def test_image_has_no_text() -> None:
    with pytest.raises(ValueError, match="no text"):
        text_of(BlobType.IMAGE, {"url": "https://example.com/a.png"})


def test_text_of_reads_what_validate_content_stores() -> None:
    stored = validate_content(
        BlobType.CHAT,
        {"messages": [{"role": "assistant", "content": "Hi", "alias": "Memo"}]},
        "blob.chat",
    )

    assert text_of(BlobType.CHAT, stored) == "Memo: Hi"
