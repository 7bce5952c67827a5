"""The schema: the feature modules' Query and Mutation mixins, plus the API's guard rails."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import strawberry
from graphql import (
    ASTValidationRule,
    DirectiveNode,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig

from powermemo_gql.core.db import database_trouble
from powermemo_gql.graphql.blobs import ALL_BLOB_TYPES, BlobMutation, BlobQuery
from powermemo_gql.graphql.changes import ChangeSubscription
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.errors import is_unexpected
from powermemo_gql.graphql.events import EventMutation
from powermemo_gql.graphql.health import HealthQuery
from powermemo_gql.graphql.memory import MemoryMutation, MemoryQuery
from powermemo_gql.graphql.profile_config import ProfileConfigMutation, ProfileConfigQuery
from powermemo_gql.graphql.profiles import ProfileMutation
from powermemo_gql.graphql.projects import ProjectMutation, ProjectQuery
from powermemo_gql.graphql.storable import StorableText
from powermemo_gql.graphql.users import UserMutation, UserQuery
from powermemo_gql.settings import Settings


@strawberry.type
class Query(UserQuery, BlobQuery, MemoryQuery, ProfileConfigQuery, ProjectQuery, HealthQuery):
    pass


@strawberry.type
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


@strawberry.type
class Subscription(ChangeSubscription):
    pass


def _database_trouble(error: GraphQLError) -> tuple[str, str] | None:
    """(code, message) when the database, not the request, is at fault."""
    return database_trouble(error.original_error)


class MaskUnexpectedErrors(MaskErrors):
    """Hide the text of unexpected errors (it may hold SQL or secrets), keep a code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Internal server error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        trouble = _database_trouble(error)
        if trouble is not None:  # overload or outage, not a bug: say so; retrying helps
            masked.message = trouble[1]
            masked.extensions = {"code": trouble[0]}
        else:
            masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


class PerOperationLoaders(SchemaExtension):
    """Fresh DataLoaders for every operation, HTTP or websocket alike."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            context.start_operation()
        yield


def max_directives_rule(limit: int) -> type[ValidationRule]:
    class MaxDirectives(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.count = 0

        def enter_directive(self, node: DirectiveNode, *_args: object) -> None:
            self.count += 1
            if self.count == limit + 1:
                self.report_error(
                    GraphQLError(
                        f"'{node.name.value}' exceeds the {limit} directives allowed", node
                    )
                )

    return MaxDirectives


def _guard_rails(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """The limits of a running server (the exported SDL does not depend on them).

    The rule classes are made once, here: the validation cache is keyed by the rules, so
    classes made afresh for every operation (as the stock limiter extensions do when built
    per operation) would make every validation a miss.
    """
    rules: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_query_depth, None),
        aliases_rule(settings.max_query_aliases),
        max_directives_rule(settings.max_query_directives),
    ]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: AddValidationRules(rules),
    ]


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    extensions: list[Callable[[], SchemaExtension]] = [
        MaskUnexpectedErrors,
        PerOperationLoaders,
        StorableText,
        *(_guard_rails(settings) if settings is not None else []),
        # Factories, not instances: the LRU caches themselves are shared module-wide.
        lambda: ParserCache(maxsize=1000),
        lambda: ValidationCache(maxsize=1000),
    ]
    batch = settings.max_batch_operations if settings is not None else 0
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=ALL_BLOB_TYPES,
        extensions=extensions,
        config=StrawberryConfig(
            auto_camel_case=True,
            # "Did you mean ...?" tells strangers what the schema holds.
            disable_field_suggestions=settings is not None and settings.is_production,
            batching_config={"max_operations": batch} if batch else None,
        ),
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"
