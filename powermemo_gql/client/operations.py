"""Each helper as data: a validated GraphQL request and a parser for its `data`.

The async and the sync client both run these, so the documents, the variables and the
mapping of result-union errors exist once, free of any I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gql import GraphQLRequest, gql

from powermemo_gql.client.errors import InvalidInputError
from powermemo_gql.client.models import (
    Blob,
    ChangeKind,
    FlushResult,
    ProfileChange,
    ProfileEntry,
    User,
)
from powermemo_gql.client.ops_base import (
    ERRORS,
    INVALID,
    ChatMessage,
    Operation,
    chat_message,
)
from powermemo_gql.client.ops_base import as_list as _list
from powermemo_gql.client.ops_base import payload as _payload
from powermemo_gql.client.ops_base import request as _request
from powermemo_gql.client.ops_base import user_of as _user
from powermemo_gql.client.recall_ops import CONTEXT, EVENTS, SEARCH

USER = "id userId data createdAt updatedAt"
BLOB = "id type createdAt"
FLUSH = """
    id trigger status itemCount llmCalls inputTokens outputTokens droppedItems embeddingTexts
    embeddingTokens error eventId startedAt finishedAt
"""
ENTRY = """
    id topic subTopic content source sourceBlobIds sourceEventId createdAt updatedAt
    lastMentionedAt history { content action source createdAt }
"""
CHANGE = """
    cursor kind entryId topic subTopic oldValue newValue source flushId eventId error createdAt
"""


def _mutation(
    name: str,
    selection: str,
    *,
    variables: str | None = None,
    input: str = "$input",
    errors: str = INVALID,
) -> GraphQLRequest:
    """A mutation of one result union: `name`'s payload with `selection`, or its errors.
    Without `variables`, it takes one `$input` of type `<name>Input!`."""
    field = name[0].lower() + name[1:]
    return gql(f"""
mutation {name}({variables or f"$input: {name}Input!"}) {{
  {field}(input: {input}) {{
    __typename
    ... on {name}Payload {{ {selection} }}
    {errors}
  }}
}}""")


CREATE_USER = _mutation("CreateUser", f"user {{ {USER} }}")
GET_USER = gql(f"query GetUser($id: ID!) {{ user(userId: $id) {{ {USER} }} }}")
LIST_USERS = gql(f"""
query ListUsers($first: Int, $after: String, $search: String) {{
  users(first: $first, after: $after, search: $search) {{
    nodes {{ {USER} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}""")
UPDATE_USER = _mutation("UpdateUser", f"user {{ {USER} }}")
DELETE_USER = _mutation(
    "DeleteUser", "deletedUserId", variables="$id: ID!", input="{userId: $id}", errors=ERRORS
)
INSERT_BLOB = _mutation("InsertBlob", f"blob {{ {BLOB} }}")
FLUSH_BUFFER = _mutation(
    "FlushBuffer",
    f"outcome flush {{ {FLUSH} }}",
    variables="$userId: ID!, $wait: Boolean!",
    input="{userId: $userId, wait: $wait}",
    errors=ERRORS,
)
PROFILE = gql(f"""
query Profile($userId: ID!, $topics: [String!], $topk: Int, $maxTokens: Int) {{
  user(userId: $userId) {{
    profile(topics: $topics, topk: $topk, maxTokens: $maxTokens) {{ {ENTRY} }}
  }}
}}""")
ADD_ENTRY = _mutation("AddProfileEntry", f"entry {{ {ENTRY} }}")
UPDATE_ENTRY = _mutation("UpdateProfileEntry", f"entry {{ {ENTRY} }}")
DELETE_ENTRY = _mutation(
    "DeleteProfileEntry", "deletedEntryId", variables="$id: ID!", input="{id: $id}", errors=ERRORS
)
IMPORT_PROFILE = _mutation("ImportProfile", f"entries {{ {ENTRY} }}")
CHANGES_CURSOR = gql(
    "query ChangesCursor($userId: ID!) { user(userId: $userId) { changesCursor } }"
)
CHANGES = gql(f"""
query Changes($userId: ID!, $first: Int, $after: String) {{
  user(userId: $userId) {{ changes(first: $first, after: $after) {{ nodes {{ {CHANGE} }} }} }}
}}""")
PROFILE_UPDATED = gql(f"""
subscription ProfileUpdated($userId: ID!, $since: String, $kinds: [ChangeKind!]) {{
  profileUpdated(userId: $userId, since: $since, kinds: $kinds) {{ {CHANGE} }}
}}""")

DOCUMENTS = (
    CREATE_USER,
    GET_USER,
    LIST_USERS,
    UPDATE_USER,
    DELETE_USER,
    INSERT_BLOB,
    FLUSH_BUFFER,
    PROFILE,
    CONTEXT,
    ADD_ENTRY,
    UPDATE_ENTRY,
    DELETE_ENTRY,
    IMPORT_PROFILE,
    CHANGES_CURSOR,
    CHANGES,
    EVENTS,
    SEARCH,
    PROFILE_UPDATED,
)


def create_user(id: str | None, data: Mapping[str, Any] | None) -> Operation[User]:
    return Operation(
        _request(CREATE_USER, input={"userId": id, "data": data}),
        lambda d: User.from_json(_payload(d, "createUser", "CreateUserPayload")["user"]),
    )


def get_user(id: str) -> Operation[User | None]:
    def parse(data: dict[str, Any]) -> User | None:
        return None if data["user"] is None else User.from_json(data["user"])

    return Operation(_request(GET_USER, id=id), parse)


def list_users(
    first: int | None, after: str | None, search: str | None
) -> Operation[tuple[list[User], str | None]]:
    def parse(data: dict[str, Any]) -> tuple[list[User], str | None]:
        page = data["users"]
        info = page["pageInfo"]
        users = [User.from_json(u) for u in page["nodes"]]
        return users, info["endCursor"] if info["hasNextPage"] else None

    return Operation(_request(LIST_USERS, first=first, after=after, search=search), parse)


def update_user(id: str, data: Mapping[str, Any]) -> Operation[User]:
    return Operation(
        _request(UPDATE_USER, input={"userId": id, "data": data}),
        lambda d: User.from_json(_payload(d, "updateUser", "UpdateUserPayload")["user"]),
    )


def delete_user(id: str) -> Operation[None]:
    def parse(data: dict[str, Any]) -> None:
        _payload(data, "deleteUser", "DeleteUserPayload")

    return Operation(_request(DELETE_USER, id=id), parse)


def _insert(
    user_id: str,
    blob: dict[str, Any],
    fields: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Operation[Blob]:
    request = {"userId": user_id, "blob": blob, "fields": fields}
    if idempotency_key is not None:
        request["idempotencyKey"] = idempotency_key
    return Operation(
        _request(INSERT_BLOB, input=request),
        lambda d: Blob.from_json(_payload(d, "insertBlob", "InsertBlobPayload")["blob"]),
    )


def insert_chat(
    user_id: str,
    messages: Sequence[ChatMessage],
    fields: Mapping[str, Any] | None,
    idempotency_key: str | None = None,
) -> Operation[Blob]:
    chat = [chat_message(message, i) for i, message in enumerate(messages)]
    return _insert(user_id, {"chat": {"messages": chat}}, fields, idempotency_key)


def insert_document(
    user_id: str,
    content: str,
    title: str | None,
    fields: Mapping[str, Any] | None,
    idempotency_key: str | None = None,
) -> Operation[Blob]:
    blob = {"document": {"content": content, "title": title}}
    return _insert(user_id, blob, fields, idempotency_key)


def flush(user_id: str, wait: bool) -> Operation[FlushResult]:
    def parse(data: dict[str, Any]) -> FlushResult:
        return FlushResult.from_json(_payload(data, "flushBuffer", "FlushBufferPayload"))

    return Operation(_request(FLUSH_BUFFER, userId=user_id, wait=wait), parse)


def profile(
    user_id: str, topics: Sequence[str] | None, topk: int | None, max_tokens: int | None
) -> Operation[list[ProfileEntry]]:
    def parse(data: dict[str, Any]) -> list[ProfileEntry]:
        return [ProfileEntry.from_json(e) for e in _user(data, user_id)["profile"]]

    variables = {"topics": _list(topics), "topk": topk, "maxTokens": max_tokens}
    return Operation(_request(PROFILE, userId=user_id, **variables), parse)


def add_profile_entry(
    user_id: str, topic: str, sub_topic: str, content: str
) -> Operation[ProfileEntry]:
    entry = {"userId": user_id, "topic": topic, "subTopic": sub_topic, "content": content}
    return Operation(
        _request(ADD_ENTRY, input=entry),
        lambda d: ProfileEntry.from_json(
            _payload(d, "addProfileEntry", "AddProfileEntryPayload")["entry"]
        ),
    )


def update_profile_entry(id: str, content: str) -> Operation[ProfileEntry]:
    return Operation(
        _request(UPDATE_ENTRY, input={"id": id, "content": content}),
        lambda d: ProfileEntry.from_json(
            _payload(d, "updateProfileEntry", "UpdateProfileEntryPayload")["entry"]
        ),
    )


def delete_profile_entry(id: str) -> Operation[None]:
    def parse(data: dict[str, Any]) -> None:
        _payload(data, "deleteProfileEntry", "DeleteProfileEntryPayload")

    return Operation(_request(DELETE_ENTRY, id=id), parse)


def import_profile(user_id: str, text: str) -> Operation[list[ProfileEntry]]:
    def parse(data: dict[str, Any]) -> list[ProfileEntry]:
        entries = _payload(data, "importProfile", "ImportProfilePayload")["entries"]
        return [ProfileEntry.from_json(e) for e in entries]

    return Operation(_request(IMPORT_PROFILE, input={"userId": user_id, "text": text}), parse)


def changes_cursor(user_id: str) -> Operation[str]:
    def parse(data: dict[str, Any]) -> str:
        return str(_user(data, user_id)["changesCursor"])

    return Operation(_request(CHANGES_CURSOR, userId=user_id), parse)


def changes(user_id: str, after: str | None, first: int | None) -> Operation[list[ProfileChange]]:
    def parse(data: dict[str, Any]) -> list[ProfileChange]:
        nodes = _user(data, user_id)["changes"]["nodes"]
        return [ProfileChange.from_json(c) for c in nodes]

    return Operation(_request(CHANGES, userId=user_id, first=first, after=after), parse)


def profile_updated(
    user_id: str, since: str | None, kinds: Sequence[ChangeKind | str] | None
) -> GraphQLRequest:
    try:
        wanted = None if kinds is None else [ChangeKind(k).value for k in kinds]
    except ValueError as error:
        raise InvalidInputError("INVALID_INPUT", str(error), "kinds") from None
    return _request(PROFILE_UPDATED, userId=user_id, since=since, kinds=wanted)
