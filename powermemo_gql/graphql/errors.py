"""Expected errors as GraphQL types. Each mutation result is a union of its payload and these."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Literal, TypeVar

import strawberry
from graphql import GraphQLError

from powermemo_gql import errors as domain


@strawberry.enum(description="The kind of an expected failure, to branch on.")
class ErrorCode(Enum):
    NOT_FOUND = strawberry.enum_value(
        "NOT_FOUND", description="What the input names does not exist, or is not the caller's."
    )
    ALREADY_EXISTS = strawberry.enum_value(
        "ALREADY_EXISTS", description="What the input would create exists already."
    )
    INVALID_INPUT = strawberry.enum_value(
        "INVALID_INPUT", description="An input value cannot be used; `field` names it."
    )
    LLM_UNAVAILABLE = strawberry.enum_value(
        "LLM_UNAVAILABLE", description="The LLM gave no usable answer, even after retries."
    )


@strawberry.interface(
    description="An expected failure: the result of a mutation that did not happen."
)
class Error:
    code: ErrorCode = strawberry.field(description="The kind of failure.")
    message: str = strawberry.field(description="What went wrong, in English, for people.")


@strawberry.type(
    description="An input value cannot be used: empty, too long, malformed or out of range."
)
class InvalidInput(Error):
    field: str = strawberry.field(
        description="Path of the offending input field, e.g. blob.chat.messages[0].content."
    )


@strawberry.type(
    description="The object a mutation names does not exist (or is not the caller's to see)."
)
class NotFound(Error):
    id: strawberry.ID = strawberry.field(description="The id as given.")


@strawberry.type(description="The project has a user with that id already.")
class UserAlreadyExists(Error):
    id: strawberry.ID = strawberry.field(description="The app's id of the existing user.")


@strawberry.type(description="A project of that name exists already.")
class ProjectAlreadyExists(Error):
    id: strawberry.ID = strawberry.field(description="The name that is taken.")


@strawberry.type(
    description="The user has an entry for that topic and sub-topic already: update it instead."
)
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


Resolver = TypeVar("Resolver", bound=Callable[..., Awaitable[Any]])


def domain_errors_as_results(
    *, invalid_input: Literal["member", "top_level"] = "member"
) -> Callable[[Resolver], Resolver]:
    """The one error policy of a resolver that returns a result union: a domain error raised
    anywhere in it becomes the union's member for that error (error_result).

    `invalid_input="top_level"`: the union has no InvalidInput member (the delete mutations,
    whose one input is an id), so a malformed input is a BAD_USER_INPUT error naming the field.
    """

    def decorate(resolver: Resolver) -> Resolver:
        @functools.wraps(resolver)  # strawberry reads the arguments through __wrapped__
        async def resolve(*args: Any, **kwargs: Any) -> Any:
            try:
                return await resolver(*args, **kwargs)
            except domain.InvalidInput as error:
                if invalid_input == "top_level":
                    raise bad_user_input(error) from error
                return error_result(error)
            except domain.DomainError as error:
                return error_result(error)

        return resolve  # type: ignore[return-value]  # same signature, by functools.wraps

    return decorate


def is_unexpected(error: GraphQLError) -> bool:
    """Whether an error escaped a resolver by accident (and must be masked).

    Errors we raise on purpose are GraphQLErrors without a cause (FORBIDDEN, BAD_USER_INPUT),
    as are parse and validation errors.
    """
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)
