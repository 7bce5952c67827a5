"""The schema: the feature modules' Query and Mutation mixins, plus the API's guard rails."""

from __future__ import annotations

import logging
from collections.abc import Callable

import strawberry
from graphql import ASTValidationRule, GraphQLError, NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaskErrors, MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from powermemo_gql.core.db import database_trouble
from powermemo_gql.graphql.blobs import ALL_BLOB_TYPES, BlobMutation, BlobQuery
from powermemo_gql.graphql.changes import ChangeSubscription
from powermemo_gql.graphql.errors import is_unexpected
from powermemo_gql.graphql.events import EventMutation
from powermemo_gql.graphql.health import HealthQuery
from powermemo_gql.graphql.limits import QueryLimits
from powermemo_gql.graphql.memory import MemoryMutation, MemoryQuery
from powermemo_gql.graphql.node_query import NodeQuery
from powermemo_gql.graphql.operation_unit import OperationScope
from powermemo_gql.graphql.profile_config import ProfileConfigMutation, ProfileConfigQuery
from powermemo_gql.graphql.profiles import ProfileMutation
from powermemo_gql.graphql.projects import ProjectMutation, ProjectQuery
from powermemo_gql.graphql.user_mutations import UserMutation
from powermemo_gql.graphql.users import UserQuery
from powermemo_gql.graphql.validation import BoundedValidation, suggests, without_suggestions
from powermemo_gql.observability.logs import reason_of
from powermemo_gql.settings import Settings

logger = logging.getLogger(__name__)


@strawberry.type(
    description=(
        "The reads: the caller's users and their memory, the project's configuration and "
        "usage, projects and keys for the root token, and health."
    )
)
class Query(
    UserQuery, BlobQuery, MemoryQuery, ProfileConfigQuery, ProjectQuery, NodeQuery, HealthQuery
):
    pass


@strawberry.type(
    description=(
        "The writes. Each returns a union of its payload and the expected errors it may meet "
        "(types implementing Error)."
    )
)
class Mutation(
    UserMutation,
    BlobMutation,
    MemoryMutation,
    ProfileMutation,
    ProfileConfigMutation,
    ProjectMutation,
    EventMutation,
):
    pass


@strawberry.type(
    description="Live changes to a user's memory, over the graphql-transport-ws protocol."
)
class Subscription(ChangeSubscription):
    pass


def _database_trouble(error: GraphQLError) -> tuple[str, str] | None:
    """(code, message) when the database, not the request, is at fault."""
    return database_trouble(error.original_error)


class MaskUnexpectedErrors(MaskErrors):
    """Hide the text of unexpected errors (it may hold SQL or secrets), keep a code; in
    production also drop "Did you mean ...?" from every error, since it tells strangers what
    the schema holds. One extension for both: each one strawberry enters costs per operation."""

    def __init__(self, hide_suggestions: bool = False) -> None:
        self._hide_suggestions = hide_suggestions
        super().__init__(should_mask_error=self._masks, error_message="Internal server error.")

    def _masks(self, error: GraphQLError) -> bool:
        return is_unexpected(error) or (self._hide_suggestions and suggests(error))

    def _process_result(self, result: object) -> None:
        # The base class asks isinstance() of a runtime Protocol here, on every result (~2 %
        # of a small query's CPU). Were strawberry to rename this hook, the base class's own
        # would run again: slower, never wrong.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if not is_unexpected(error):
            return without_suggestions(error)
        masked = super().anonymise_error(error)
        trouble = _database_trouble(error)
        if trouble is not None:  # overload or outage, not a bug: say so; retrying helps
            masked.message = trouble[1]
            masked.extensions = {"code": trouble[0]}
        else:
            masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


# Typed outcomes a client handles (subscribe again); the broker's outage itself is logged
# once by the broker, so these are not errors to log with a traceback per subscriber.
EXPECTED_CODES = frozenset({"FEED_INTERRUPTED", "BROKER_UNAVAILABLE"})


class Schema(strawberry.Schema):
    """strawberry logs every error at ERROR with a traceback; most are the client's mistakes
    (validation, bad input, a refused key) and say nothing about the server."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            log_error(error)


def log_error(error: GraphQLError) -> None:
    """Client mistakes at INFO, the database's trouble at WARNING, both on one line; a bug
    at ERROR with its traceback (the line carries the request id)."""
    if not is_unexpected(error):
        code = (error.extensions or {}).get("code", "GRAPHQL_ERROR")
        # A broker outage is logged once by the broker, not once per subscriber.
        level = logging.DEBUG if code in EXPECTED_CODES else logging.INFO
        logger.log(level, "request error: %s: %s", code, error.message)
        return
    path = ".".join(map(str, error.path or ())) or "-"
    trouble = _database_trouble(error)
    if trouble is not None:
        logger.warning("%s at %s: %s", trouble[0], path, reason_of(error.original_error or error))
        return
    logger.error("unexpected error at %s", path, exc_info=error.original_error)


def _guard_rails(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """The limits of a running server (the exported SDL does not depend on them).

    The limits and rules are made once, here: validation verdicts are cached by them, so
    values made afresh for every operation would make every validation a miss.
    """
    limits = QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_directives=settings.max_query_directives,
        max_fields=settings.max_query_fields,
    )
    rules: list[type[ASTValidationRule]] = []
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    guards: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: BoundedValidation(
            limits, settings.max_query_length, rules, hide_suggestions=settings.is_production
        ),
    ]
    return guards


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    hide_suggestions = settings is not None and settings.is_production
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaskUnexpectedErrors(hide_suggestions),
        OperationScope,
        # The limits come first: the query's length is checked before ParserCache parses.
        # Validation, cached too, comes with them (without settings: graphql-core's own).
        *(_guard_rails(settings) if settings is not None else []),
        # A factory, not an instance: the LRU cache itself is shared module-wide.
        lambda: ParserCache(maxsize=1000),
    ]
    batch = settings.max_batch_operations if settings is not None else 0
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=ALL_BLOB_TYPES,
        extensions=extensions,
        config=StrawberryConfig(
            auto_camel_case=True,
            disable_field_suggestions=settings is not None and settings.is_production,
            batching_config={"max_operations": batch} if batch else None,
        ),
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"
