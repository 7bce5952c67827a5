"""Blobs over GraphQL: inserting each kind, reading it back, validation, deletion, the buffer."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.blobs.content import text_of
from powermemo_gql.blobs.models import Blob, BlobType
from powermemo_gql.buffers.models import BufferItem
from powermemo_gql.core.global_ids import global_id
from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.resources import Resources
from tests.conftest import FAKE_NOW, ProjectFactory
from tests.support import Api, ProjectHandle, raw_uuid

BLOB_FIELDS = """
fragment BlobFields on Blob {
  __typename
  id
  type
  fields
  createdAt
  user { userId }
  ... on ChatBlob { messages { role content alias createdAt } }
  ... on DocumentBlob { title content }
  ... on CodeBlob { language content }
  ... on ImageBlob { url dataBase64 mimeType caption }
  ... on TranscriptBlob { segments { speaker text startSeconds endSeconds } }
}
"""
INSERT_BLOB = (
    """
mutation($input: InsertBlobInput!) {
  insertBlob(input: $input) {
    __typename
    ... on InsertBlobPayload { blob { ...BlobFields } }
    ... on NotFound { code message id }
    ... on InvalidInput { code message field }
  }
}
"""
    + BLOB_FIELDS
)
GET_BLOB = (
    """
query($id: ID!) {
  blob(id: $id) { ...BlobFields }
}
"""
    + BLOB_FIELDS
)
USER_BLOBS = (
    """
query($userId: ID!, $type: BlobType) {
  user(userId: $userId) {
    blobs(type: $type) { nodes { ...BlobFields } }
  }
}
"""
    + BLOB_FIELDS
)
USER_BLOB_PAGE = """
query($userId: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  user(userId: $userId) {
    blobs(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { id } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""
DELETE_BLOB = """
mutation($id: ID!) {
  deleteBlob(input: {id: $id}) {
    __typename
    ... on DeleteBlobPayload { deletedBlobId }
    ... on NotFound { code message id }
  }
}
"""
CREATE_USER = """
mutation($id: ID!) {
  createUser(input: {userId: $id}) { __typename }
}
"""

USER_ID = "alice"
PNG_BASE64 = "iVBORw0KGgo="  # the PNG signature

CHAT = {
    "chat": {
        "messages": [
            {
                "role": "USER",
                "content": "I moved to Lyon last spring",
                "alias": "Zoë",
                "createdAt": "2024-05-01T10:00:00+02:00",
            },
            {"role": "ASSISTANT", "content": "How do you like it?"},
        ]
    }
}
DOCUMENT = {"document": {"title": "Packing list", "content": "Passport, charger, socks"}}
CODE = {"code": {"language": "python", "content": "print('hi')"}}
IMAGE_URL = {"image": {"url": "https://example.com/cat.png", "caption": "a cat"}}
IMAGE_DATA = {"image": {"dataBase64": PNG_BASE64, "mimeType": "image/png"}}
TRANSCRIPT = {
    "transcript": {
        "segments": [
            {"speaker": "Ana", "text": "Shall we start?", "startSeconds": 0, "endSeconds": 1.5},
            {"text": "(laughter)", "startSeconds": 1.5},
        ]
    }
}
ALL_KINDS = [
    pytest.param(CHAT, "ChatBlob", "CHAT", id="chat"),
    pytest.param(DOCUMENT, "DocumentBlob", "DOCUMENT", id="document"),
    pytest.param(CODE, "CodeBlob", "CODE", id="code"),
    pytest.param(IMAGE_URL, "ImageBlob", "IMAGE", id="image-url"),
    pytest.param(IMAGE_DATA, "ImageBlob", "IMAGE", id="image-data"),
    pytest.param(TRANSCRIPT, "TranscriptBlob", "TRANSCRIPT", id="transcript"),
]


# Helpers


@pytest.fixture
async def alice(project: ProjectHandle) -> str:
    result = await project.api.ok(CREATE_USER, id=USER_ID)
    assert result["createUser"]["__typename"] == "CreateUserPayload"
    return USER_ID


async def insert_blob(
    api: Api, blob: dict[str, Any], user_id: str = USER_ID, **extra: Any
) -> dict[str, Any]:
    """The insertBlob result (a payload or an error member)."""
    result = await api.ok(INSERT_BLOB, input={"userId": user_id, "blob": blob, **extra})
    inserted: dict[str, Any] = result["insertBlob"]
    return inserted


async def inserted_blob(
    api: Api, blob: dict[str, Any], user_id: str = USER_ID, **extra: Any
) -> dict[str, Any]:
    """A blob that must have been inserted."""
    inserted = await insert_blob(api, blob, user_id, **extra)
    assert inserted["__typename"] == "InsertBlobPayload", inserted
    node: dict[str, Any] = inserted["blob"]
    return node


async def get_blob(api: Api, blob_id: str) -> dict[str, Any] | None:
    result = await api.ok(GET_BLOB, id=blob_id)
    blob: dict[str, Any] | None = result["blob"]
    return blob


async def user_blobs(api: Api, blob_type: str | None = None) -> list[dict[str, Any]]:
    result = await api.ok(USER_BLOBS, userId=USER_ID, type=blob_type)
    nodes: list[dict[str, Any]] = result["user"]["blobs"]["nodes"]
    return nodes


async def blob_page(api: Api, **args: Any) -> dict[str, Any]:
    variables = {"first": None, "after": None, "last": None, "before": None, **args}
    result = await api.ok(USER_BLOB_PAGE, userId=USER_ID, **variables)
    page: dict[str, Any] = result["user"]["blobs"]
    return page


def resources_of(app: Starlette) -> Resources:
    resources: Resources = app.state.resources
    return resources


async def buffer_items_of(app: Starlette, blob_id: str) -> list[BufferItem]:
    async with resources_of(app).sessions() as session:
        rows = await session.scalars(
            select(BufferItem).where(col(BufferItem.blob_id) == raw_uuid(blob_id))
        )
        return list(rows.all())


async def all_buffer_items(app: Starlette) -> list[BufferItem]:
    async with resources_of(app).sessions() as session:
        return list((await session.scalars(select(BufferItem))).all())


async def stored_blob(app: Starlette, blob_id: str) -> Blob:
    async with resources_of(app).sessions() as session:
        row = await session.get(Blob, raw_uuid(blob_id))
    assert row is not None
    return row


# Inserting and reading back each kind


async def test_chat_blob_round_trips_messages_with_alias_and_offset(
    project: ProjectHandle, alice: str
) -> None:
    blob = await inserted_blob(project.api, CHAT)

    assert blob["__typename"] == "ChatBlob"
    assert blob["type"] == "CHAT"
    first, second = blob["messages"]
    assert first["role"] == "USER"
    assert first["content"] == "I moved to Lyon last spring"
    assert first["alias"] == "Zoë"
    said_at = datetime.fromisoformat(first["createdAt"])
    assert said_at == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert said_at.utcoffset() == timedelta(hours=2)  # the offset the app sent is kept
    assert second == {
        "role": "ASSISTANT",
        "content": "How do you like it?",
        "alias": None,
        "createdAt": None,
    }
    assert await get_blob(project.api, blob["id"]) == blob


async def test_document_blob_round_trips_title_and_content(
    project: ProjectHandle, alice: str
) -> None:
    blob = await inserted_blob(project.api, DOCUMENT)

    assert blob["__typename"] == "DocumentBlob"
    assert blob["type"] == "DOCUMENT"
    assert blob["title"] == "Packing list"
    assert blob["content"] == "Passport, charger, socks"
    assert await get_blob(project.api, blob["id"]) == blob


async def test_document_blob_without_title_reads_a_null_title(
    project: ProjectHandle, alice: str
) -> None:
    blob = await inserted_blob(project.api, {"document": {"content": "Just a note"}})

    fetched = await get_blob(project.api, blob["id"])
    assert fetched is not None
    assert fetched["title"] is None
    assert fetched["content"] == "Just a note"


async def test_code_blob_round_trips_language_and_content(
    project: ProjectHandle, alice: str
) -> None:
    blob = await inserted_blob(project.api, CODE)

    assert blob["__typename"] == "CodeBlob"
    assert blob["type"] == "CODE"
    assert blob["language"] == "python"
    assert blob["content"] == "print('hi')"
    assert await get_blob(project.api, blob["id"]) == blob


async def test_image_blob_by_url_round_trips(project: ProjectHandle, alice: str) -> None:
    blob = await inserted_blob(project.api, IMAGE_URL)

    assert blob["__typename"] == "ImageBlob"
    assert blob["type"] == "IMAGE"
    assert blob["url"] == "https://example.com/cat.png"
    assert blob["dataBase64"] is None
    assert blob["mimeType"] is None
    assert blob["caption"] == "a cat"
    assert await get_blob(project.api, blob["id"]) == blob


async def test_image_blob_by_data_round_trips(project: ProjectHandle, alice: str) -> None:
    blob = await inserted_blob(project.api, IMAGE_DATA)

    assert blob["__typename"] == "ImageBlob"
    assert blob["url"] is None
    assert blob["dataBase64"] == PNG_BASE64
    assert blob["mimeType"] == "image/png"
    assert blob["caption"] is None
    assert await get_blob(project.api, blob["id"]) == blob


async def test_transcript_blob_round_trips_segments(project: ProjectHandle, alice: str) -> None:
    blob = await inserted_blob(project.api, TRANSCRIPT)

    assert blob["__typename"] == "TranscriptBlob"
    assert blob["type"] == "TRANSCRIPT"
    assert blob["segments"] == [
        {"speaker": "Ana", "text": "Shall we start?", "startSeconds": 0.0, "endSeconds": 1.5},
        {"speaker": None, "text": "(laughter)", "startSeconds": 1.5, "endSeconds": None},
    ]
    assert await get_blob(project.api, blob["id"]) == blob


@pytest.mark.fake_clock
async def test_inserted_blob_is_created_at_the_apps_clock(
    app: Starlette, project: ProjectHandle, alice: str
) -> None:
    blob = await inserted_blob(project.api, DOCUMENT)

    assert datetime.fromisoformat(blob["createdAt"]) == FAKE_NOW
    assert (await stored_blob(app, blob["id"])).created_at == FAKE_NOW
    fetched = await get_blob(project.api, blob["id"])
    assert fetched is not None
    assert datetime.fromisoformat(fetched["createdAt"]) == FAKE_NOW


@pytest.mark.parametrize(("blob_input", "typename", "blob_type"), ALL_KINDS)
async def test_inserted_blob_belongs_to_its_user_with_a_fresh_timestamp(
    project: ProjectHandle, alice: str, blob_input: dict[str, Any], typename: str, blob_type: str
) -> None:
    before = datetime.now(UTC)

    blob = await inserted_blob(project.api, blob_input)

    assert blob["__typename"] == typename
    assert blob["type"] == blob_type
    assert raw_uuid(blob["id"])  # a global id, of a Blob whatever its kind
    assert base64.b64decode(blob["id"]).startswith(b"Blob:")
    assert blob["user"] == {"userId": "alice"}
    created_at = datetime.fromisoformat(blob["createdAt"])
    assert created_at.utcoffset() is not None
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    fetched = await get_blob(project.api, blob["id"])
    assert fetched is not None
    assert fetched["user"] == {"userId": "alice"}


async def test_fields_round_trip_as_json(project: ProjectHandle, alice: str) -> None:
    fields = {
        "source": "slack",
        "thread": 42,
        "score": 0.5,
        "pinned": False,
        "note": None,
        "tags": ["a", 1, None],
        "meta": {"channel": {"id": "C1", "name": "général"}},
    }

    blob = await inserted_blob(project.api, DOCUMENT, fields=fields)

    assert blob["fields"] == fields
    fetched = await get_blob(project.api, blob["id"])
    assert fetched is not None
    assert fetched["fields"] == fields


async def test_fields_default_to_an_empty_object(project: ProjectHandle, alice: str) -> None:
    blob = await inserted_blob(project.api, DOCUMENT)

    assert blob["fields"] == {}


# Reading through the user


async def test_user_blobs_lists_every_kind_oldest_first(project: ProjectHandle, alice: str) -> None:
    inserted = [
        await inserted_blob(project.api, blob)
        for blob in (CHAT, DOCUMENT, CODE, IMAGE_URL, TRANSCRIPT)
    ]

    assert await user_blobs(project.api) == inserted


@pytest.mark.parametrize(
    ("blob_type", "expected"),
    [
        pytest.param("CHAT", [0, 3], id="chat"),
        pytest.param("DOCUMENT", [1], id="document"),
        pytest.param("IMAGE", [2, 4], id="image"),
        pytest.param("CODE", [], id="code"),
        pytest.param("TRANSCRIPT", [5], id="transcript"),
    ],
)
async def test_user_blobs_filters_by_type(
    project: ProjectHandle, alice: str, blob_type: str, expected: list[int]
) -> None:
    ids = [
        (await inserted_blob(project.api, blob))["id"]
        for blob in (CHAT, DOCUMENT, IMAGE_URL, CHAT, IMAGE_DATA, TRANSCRIPT)
    ]

    nodes = await user_blobs(project.api, blob_type)

    assert [node["id"] for node in nodes] == [ids[i] for i in expected]
    assert {node["type"] for node in nodes} <= {blob_type}


async def test_user_blobs_holds_only_that_users_blobs(project: ProjectHandle, alice: str) -> None:
    await project.api.ok(CREATE_USER, id="bob")
    mine = await inserted_blob(project.api, DOCUMENT)
    await inserted_blob(project.api, CHAT, user_id="bob")

    assert [node["id"] for node in await user_blobs(project.api)] == [mine["id"]]


async def test_blob_query_with_unknown_or_malformed_id_is_null(
    project: ProjectHandle, alice: str
) -> None:
    await inserted_blob(project.api, DOCUMENT)

    assert await get_blob(project.api, global_id("Blob", uuid.uuid4())) is None
    assert await get_blob(project.api, global_id("Blob", "not-a-uuid")) is None
    assert await get_blob(project.api, global_id("User", uuid.uuid4())) is None
    for malformed in ("not-a-uuid", "", str(uuid.uuid4())):  # not global ids: refused
        response = await project.api.run(GET_BLOB, id=malformed)
        assert response.error_codes() == ["BAD_USER_INPUT"]
        assert response.errors[0]["extensions"]["field"] == "id"


async def test_blob_of_another_project_is_invisible(
    project: ProjectHandle, alice: str, make_project: ProjectFactory
) -> None:
    blob = await inserted_blob(project.api, DOCUMENT)
    other = await make_project("globex")

    assert await get_blob(other.api, blob["id"]) is None
    deleted = await other.api.ok(DELETE_BLOB, id=blob["id"])
    assert deleted["deleteBlob"]["__typename"] == "NotFound"
    assert await get_blob(project.api, blob["id"]) == blob


# Validation


async def test_blob_input_with_two_kinds_is_a_graphql_error(
    project: ProjectHandle, alice: str
) -> None:
    response = await project.api.run(
        INSERT_BLOB, input={"userId": USER_ID, "blob": {**DOCUMENT, **CODE}}
    )

    assert response.data is None
    assert len(response.errors) == 1
    assert "BlobInput" in response.errors[0]["message"]
    assert await user_blobs(project.api) == []


async def test_blob_input_with_no_kind_is_a_graphql_error(
    project: ProjectHandle, alice: str
) -> None:
    response = await project.api.run(INSERT_BLOB, input={"userId": USER_ID, "blob": {}})

    assert response.data is None
    assert len(response.errors) == 1
    assert "BlobInput" in response.errors[0]["message"]
    assert await user_blobs(project.api) == []


async def test_blob_input_with_a_null_kind_is_a_graphql_error(
    project: ProjectHandle, alice: str
) -> None:
    response = await project.api.run(
        INSERT_BLOB, input={"userId": USER_ID, "blob": {"document": None}}
    )

    assert response.data is None
    assert len(response.errors) == 1
    assert "document" in response.errors[0]["message"]
    assert await user_blobs(project.api) == []


def chat_message(**overrides: Any) -> dict[str, Any]:
    return {"role": "USER", "content": "hello", **overrides}


@pytest.mark.parametrize(
    ("blob_input", "field"),
    [
        pytest.param({"chat": {"messages": []}}, "blob.chat.messages", id="no-messages"),
        pytest.param(
            {"chat": {"messages": [chat_message(content="")]}},
            "blob.chat.messages[0].content",
            id="empty-content",
        ),
        pytest.param(
            {"chat": {"messages": [chat_message(), chat_message(content="")]}},
            "blob.chat.messages[1].content",
            id="empty-second-content",
        ),
        pytest.param(
            {"chat": {"messages": [chat_message(createdAt="2024-05-01T10:00:00")]}},
            "blob.chat.messages[0].createdAt",
            id="created-at-without-offset",
        ),
        pytest.param(
            {"image": {"url": "https://example.com/cat.png", "dataBase64": PNG_BASE64}},
            "blob.image",
            id="image-url-and-data",
        ),
        pytest.param({"image": {"caption": "what?"}}, "blob.image", id="image-no-source"),
        pytest.param(
            {"image": {"dataBase64": "this is not base64!"}},
            "blob.image.dataBase64",
            id="image-bad-base64",
        ),
        pytest.param(
            {"transcript": {"segments": [{"text": "hi", "startSeconds": 5, "endSeconds": 2}]}},
            "blob.transcript.segments[0]",
            id="transcript-ends-before-start",
        ),
        pytest.param({"document": {"content": ""}}, "blob.document.content", id="empty-document"),
    ],
)
async def test_invalid_blob_content_is_invalid_input_and_stores_nothing(
    app: Starlette, project: ProjectHandle, alice: str, blob_input: dict[str, Any], field: str
) -> None:
    result = await insert_blob(project.api, blob_input)

    assert result["__typename"] == "InvalidInput"
    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == field
    assert result["message"].startswith(f"{field}: ")
    assert await user_blobs(project.api) == []
    assert await all_buffer_items(app) == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param([1, 2], id="list"),
        pytest.param("text", id="string"),
        pytest.param(7, id="number"),
        pytest.param(True, id="boolean"),
    ],
)
async def test_fields_that_are_not_an_object_are_invalid_input(
    app: Starlette, project: ProjectHandle, alice: str, fields: Any
) -> None:
    result = await insert_blob(project.api, CHAT, fields=fields)

    assert result["__typename"] == "InvalidInput"
    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == "fields"
    assert await user_blobs(project.api) == []
    assert await all_buffer_items(app) == []


async def test_fields_over_the_size_limit_are_invalid_input(
    project: ProjectHandle, alice: str
) -> None:
    result = await insert_blob(project.api, DOCUMENT, fields={"pad": "x" * 16 * 1024})

    assert result["__typename"] == "InvalidInput"
    assert result["field"] == "fields"
    assert await user_blobs(project.api) == []


@pytest.mark.parametrize(
    ("blob_input", "fields", "field"),
    [
        pytest.param(
            {"chat": {"messages": [chat_message(content="a\x00b")]}},
            None,
            "blob.chat.messages[0].content",
            id="chat-content",
        ),
        pytest.param(
            {"document": {"content": "ok", "title": "\x00"}},
            None,
            "blob.document.title",
            id="document-title",
        ),
        pytest.param(DOCUMENT, {"note": "a\x00b"}, "fields", id="fields-value"),
        pytest.param(DOCUMENT, {"deep": [{"k\x00": 1}]}, "fields", id="fields-nested-key"),
    ],
)
async def test_nul_characters_are_invalid_input_on_every_database(
    app: Starlette,
    project: ProjectHandle,
    alice: str,
    blob_input: dict[str, Any],
    fields: Any,
    field: str,
) -> None:
    # PostgreSQL cannot store NUL in JSON; this used to be an internal error there.
    result = await insert_blob(project.api, blob_input, fields=fields)

    assert result["__typename"] == "InvalidInput"
    assert result["field"] == field
    assert await user_blobs(project.api) == []
    assert await all_buffer_items(app) == []


async def test_fields_may_hold_an_escaped_nul_as_plain_text(
    project: ProjectHandle, alice: str
) -> None:
    fields = {"pattern": "\\u0000"}  # a backslash and "u0000", not a NUL

    blob = await inserted_blob(project.api, DOCUMENT, fields=fields)

    assert blob["fields"] == fields


async def test_insert_for_unknown_user_is_user_not_found(
    app: Starlette, project: ProjectHandle, alice: str
) -> None:
    result = await insert_blob(project.api, CHAT, user_id="ghost")

    assert result["__typename"] == "NotFound"
    assert result["code"] == "NOT_FOUND"
    assert result["id"] == "ghost"
    assert await all_buffer_items(app) == []


async def test_insert_for_a_user_of_another_project_is_user_not_found(
    project: ProjectHandle, alice: str, make_project: ProjectFactory
) -> None:
    other = await make_project("globex")

    result = await insert_blob(other.api, CHAT)

    assert result["__typename"] == "NotFound"
    assert await user_blobs(project.api) == []


# Deleting


async def test_delete_blob_removes_it(project: ProjectHandle, alice: str) -> None:
    kept = await inserted_blob(project.api, CODE)
    doomed = await inserted_blob(project.api, DOCUMENT)

    result = await project.api.ok(DELETE_BLOB, id=doomed["id"])

    assert result["deleteBlob"] == {
        "__typename": "DeleteBlobPayload",
        "deletedBlobId": doomed["id"],
    }
    assert await get_blob(project.api, doomed["id"]) is None
    assert await user_blobs(project.api) == [kept]


async def test_delete_blob_twice_is_blob_not_found(project: ProjectHandle, alice: str) -> None:
    blob = await inserted_blob(project.api, DOCUMENT)
    await project.api.ok(DELETE_BLOB, id=blob["id"])

    again = await project.api.ok(DELETE_BLOB, id=blob["id"])

    assert again["deleteBlob"]["__typename"] == "NotFound"
    assert again["deleteBlob"]["code"] == "NOT_FOUND"
    assert again["deleteBlob"]["id"] == blob["id"]


@pytest.mark.parametrize("bad_raw", ["not-a-uuid", "1234"])
async def test_delete_blob_with_a_non_uuid_id_is_blob_not_found(
    project: ProjectHandle, alice: str, bad_raw: str
) -> None:
    kept = await inserted_blob(project.api, DOCUMENT)
    bad_id = global_id("Blob", bad_raw)

    result = await project.api.ok(DELETE_BLOB, id=bad_id)

    assert result["deleteBlob"]["__typename"] == "NotFound"
    assert result["deleteBlob"]["id"] == bad_id
    malformed = await project.api.run(DELETE_BLOB, id=bad_raw)
    assert malformed.error_codes() == ["BAD_USER_INPUT"]
    assert await user_blobs(project.api) == [kept]


async def test_delete_blob_removes_its_buffer_item(
    app: Starlette, project: ProjectHandle, alice: str
) -> None:
    blob = await inserted_blob(project.api, CHAT)
    assert len(await buffer_items_of(app, blob["id"])) == 1

    await project.api.ok(DELETE_BLOB, id=blob["id"])

    assert await buffer_items_of(app, blob["id"]) == []


# The buffer


@pytest.mark.parametrize(
    ("blob_input", "kind"),
    [
        pytest.param(CHAT, BlobType.CHAT, id="chat"),
        pytest.param(DOCUMENT, BlobType.DOCUMENT, id="document"),
        pytest.param(TRANSCRIPT, BlobType.TRANSCRIPT, id="transcript"),
    ],
)
async def test_processable_blob_joins_the_buffer_with_its_token_count(
    app: Starlette, project: ProjectHandle, alice: str, blob_input: dict[str, Any], kind: BlobType
) -> None:
    blob = await inserted_blob(project.api, blob_input)

    items = await buffer_items_of(app, blob["id"])
    assert len(items) == 1
    item = items[0]
    row = await stored_blob(app, blob["id"])
    assert item.status == "idle"
    assert item.blob_type == kind.value
    assert item.user_id == row.user_id
    assert item.project_id == raw_uuid(project.id)
    expected = count_tokens(text_of(kind, row.payload))
    assert item.token_count == expected
    assert item.token_count > 0
    assert await all_buffer_items(app) == items


async def test_chat_token_count_covers_speaker_names(
    app: Starlette, project: ProjectHandle, alice: str
) -> None:
    blob = await inserted_blob(project.api, CHAT)

    (item,) = await buffer_items_of(app, blob["id"])
    text = "Zoë: I moved to Lyon last spring\nassistant: How do you like it?"
    assert item.token_count == count_tokens(text)


@pytest.mark.parametrize(
    "blob_input",
    [
        pytest.param(CODE, id="code"),
        pytest.param(IMAGE_URL, id="image-url"),
        pytest.param(IMAGE_DATA, id="image-data"),
    ],
)
async def test_code_and_image_blobs_stay_out_of_the_buffer(
    app: Starlette, project: ProjectHandle, alice: str, blob_input: dict[str, Any]
) -> None:
    blob = await inserted_blob(project.api, blob_input)

    await stored_blob(app, blob["id"])  # the blob itself is stored
    assert await all_buffer_items(app) == []


# Pagination of user.blobs


async def five_blobs(api: Api) -> list[str]:
    return [
        (await inserted_blob(api, {"document": {"content": f"note {i}"}}))["id"] for i in range(5)
    ]


async def test_user_blobs_pages_forward_in_insertion_order(
    project: ProjectHandle, alice: str
) -> None:
    ids = await five_blobs(project.api)

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await blob_page(project.api, first=2, after=after)
        pages.append(page)
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert len(pages) < 5, "pagination does not end"

    assert seen == ids
    assert [len(page["edges"]) for page in pages] == [2, 2, 1]
    assert [page["pageInfo"]["hasPreviousPage"] for page in pages] == [False, True, True]
    for page in pages:
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


async def test_user_blobs_pages_backward_with_last_and_before(
    project: ProjectHandle, alice: str
) -> None:
    ids = await five_blobs(project.api)

    last_page = await blob_page(project.api, last=2)
    assert [edge["node"]["id"] for edge in last_page["edges"]] == ids[3:]
    assert last_page["pageInfo"]["hasPreviousPage"] is True
    assert last_page["pageInfo"]["hasNextPage"] is False

    middle = await blob_page(project.api, last=2, before=last_page["pageInfo"]["startCursor"])
    assert [edge["node"]["id"] for edge in middle["edges"]] == ids[1:3]
    assert middle["pageInfo"]["hasPreviousPage"] is True
    assert middle["pageInfo"]["hasNextPage"] is True

    start = await blob_page(project.api, last=2, before=middle["pageInfo"]["startCursor"])
    assert [edge["node"]["id"] for edge in start["edges"]] == ids[:1]
    assert start["pageInfo"]["hasPreviousPage"] is False
    assert start["pageInfo"]["hasNextPage"] is True


async def test_user_blobs_cursor_from_a_forward_page_works_backward(
    project: ProjectHandle, alice: str
) -> None:
    ids = await five_blobs(project.api)
    first_page = await blob_page(project.api, first=3)

    before_third = await blob_page(project.api, last=5, before=first_page["edges"][2]["cursor"])

    assert [edge["node"]["id"] for edge in before_third["edges"]] == ids[:2]


@pytest.mark.parametrize("first", [-1, 101])
async def test_user_blobs_rejects_a_page_size_out_of_range(
    project: ProjectHandle, alice: str, first: int
) -> None:
    await five_blobs(project.api)

    response = await project.api.run(
        USER_BLOB_PAGE, userId=USER_ID, first=first, after=None, last=None, before=None
    )

    assert response.error_codes() == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "first"
    assert response.errors[0]["path"] == ["user", "blobs"]


async def test_user_blobs_with_first_zero_is_empty_but_says_more_follow(
    project: ProjectHandle, alice: str
) -> None:
    await five_blobs(project.api)

    page = await blob_page(project.api, first=0)

    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["endCursor"] is None


async def test_user_blobs_rejects_a_foreign_cursor(project: ProjectHandle, alice: str) -> None:
    await five_blobs(project.api)
    users = await project.api.ok("{ users(first: 1) { pageInfo { endCursor } } }")
    user_cursor = users["users"]["pageInfo"]["endCursor"]

    response = await project.api.run(
        USER_BLOB_PAGE, userId=USER_ID, first=2, after=user_cursor, last=None, before=None
    )

    assert response.error_codes() == ["BAD_USER_INPUT"]
