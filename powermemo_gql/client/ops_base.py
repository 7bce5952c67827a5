"""What every client operation is made of: a validated request and a parser for its `data`,
with the mapping of result-union errors and the checks done before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar

from gql import GraphQLRequest

from powermemo_gql.client.errors import InvalidInputError, NotFoundError, from_union_member

T = TypeVar("T")

# A chat message: ("user", "text"), or a mapping with role, content, alias, created_at.
ChatMessage: TypeAlias = tuple[str, str] | Mapping[str, Any]


@dataclass(frozen=True)
class Operation(Generic[T]):
    request: GraphQLRequest
    parse: Callable[[dict[str, Any]], T]


# The error members of a result union; INVALID for the unions that have InvalidInput.
ERRORS = "... on Error { __typename code message }"
INVALID = f"{ERRORS} ... on InvalidInput {{ field }}"


def request(document: GraphQLRequest, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(document, variable_values=variables)


def payload(data: Mapping[str, Any], root: str, payload_type: str) -> Mapping[str, Any]:
    """The payload of a result union, or the typed exception for its error member."""
    result: Mapping[str, Any] = data[root]
    if result["__typename"] != payload_type:
        raise from_union_member(result)
    return result


def user_of(data: Mapping[str, Any], user_id: str) -> Mapping[str, Any]:
    """`user(userId)` of a query that needs the user: null becomes NotFoundError."""
    user: Mapping[str, Any] | None = data["user"]
    if user is None:
        raise NotFoundError("NOT_FOUND", f"User '{user_id}' not found", typename="NotFound")
    return user


_MESSAGE_KEYS = {"role", "content", "alias", "created_at"}


def chat_message(message: ChatMessage, index: int) -> dict[str, Any]:
    """One message as ChatMessageInput; mistakes raise InvalidInputError before any request."""
    path = f"blob.chat.messages[{index}]"
    role: Any
    content: Any
    if isinstance(message, tuple):
        if len(message) != 2:
            raise InvalidInputError("INVALID_INPUT", "expected (role, content)", path)
        role, content = message
        alias: Any = None
        created_at: Any = None
    elif isinstance(message, Mapping):
        unknown = set(message) - _MESSAGE_KEYS
        if unknown:
            raise InvalidInputError(
                "INVALID_INPUT",
                f"unknown keys {sorted(unknown)}; use {sorted(_MESSAGE_KEYS)}",
                path,
            )
        role, content = message.get("role"), message.get("content")
        alias, created_at = message.get("alias"), message.get("created_at")
    else:
        raise InvalidInputError("INVALID_INPUT", "expected a (role, content) tuple or a dict", path)
    if not isinstance(role, str) or role.upper() not in ("USER", "ASSISTANT"):
        raise InvalidInputError("INVALID_INPUT", "role is 'user' or 'assistant'", f"{path}.role")
    if not isinstance(content, str):
        raise InvalidInputError("INVALID_INPUT", "content is a string", f"{path}.content")
    if isinstance(created_at, datetime):
        created_at = created_at.isoformat()
    return {"role": role.upper(), "content": content, "alias": alias, "createdAt": created_at}


def as_list(values: Sequence[str] | None) -> list[str] | None:
    if isinstance(values, str):  # a lone string would be sent as a list of characters
        return [values]
    return None if values is None else list(values)
