"""Expected errors as GraphQL types. Each mutation result is a union of its payload and these."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError

from powermemo_gql import errors as domain


@strawberry.enum
class ErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_INPUT = "INVALID_INPUT"
    LLM_UNAVAILABLE = "LLM_UNAVAILABLE"


@strawberry.interface(
    description="An expected failure: the result of a mutation that did not happen."
)
class Error:
    code: ErrorCode
    message: str


@strawberry.type
class InvalidInput(Error):
    field: str = strawberry.field(
        description="Path of the offending input field, e.g. blob.chat.messages[0].content."
    )


@strawberry.type(
    description="The object a mutation names does not exist (or is not the caller's to see)."
)
class NotFound(Error):
    id: strawberry.ID = strawberry.field(description="The id as given.")


@strawberry.type
class UserAlreadyExists(Error):
    id: strawberry.ID


@strawberry.type
class ProjectAlreadyExists(Error):
    id: strawberry.ID = strawberry.field(description="The name that is taken.")


@strawberry.type
class ProfileEntryAlreadyExists(Error):
    id: strawberry.ID = strawberry.field(description="topic/subTopic of the existing entry.")


@strawberry.type(description="The LLM gave no usable answer, even after the configured retries.")
class LLMUnavailable(Error):
    pass


_ALREADY_EXISTS: dict[str, type[Any]] = {
    "ProfileEntry": ProfileEntryAlreadyExists,
    "User": UserAlreadyExists,
    "Project": ProjectAlreadyExists,
}


def error_result(error: domain.DomainError) -> Any:
    """The GraphQL error type for a domain error."""
    if isinstance(error, domain.InvalidInput):
        return InvalidInput(code=ErrorCode.INVALID_INPUT, message=error.message, field=error.field)
    if isinstance(error, domain.NotFound):
        return NotFound(code=ErrorCode.NOT_FOUND, message=error.message, id=strawberry.ID(error.id))
    if isinstance(error, domain.LLMUnavailable):
        return LLMUnavailable(code=ErrorCode.LLM_UNAVAILABLE, message=error.message)
    if isinstance(error, domain.Conflict):
        return _ALREADY_EXISTS[error.entity](
            code=ErrorCode.ALREADY_EXISTS, message=error.message, id=strawberry.ID(error.id)
        )
    raise error


def bad_user_input(error: domain.InvalidInput) -> GraphQLError:
    """A query argument that cannot be used: a top-level error naming the argument."""
    return GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field})


def is_unexpected(error: GraphQLError) -> bool:
    """Whether an error escaped a resolver by accident (and must be masked).

    Errors we raise on purpose are GraphQLErrors without a cause (FORBIDDEN, BAD_USER_INPUT),
    as are parse and validation errors.
    """
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)
