"""Validation with bounded cost, cached, without suggestions in production.

Replaces strawberry's ValidationCache and the stock limiter rules: the cheap measures of
`limits.document_errors` run first and refuse a document before the standard rules (some of
them superlinear) see it; the verdict is cached per document, as ValidationCache did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    validate,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from powermemo_gql.graphql.limits import QueryLimits, document_errors

OPERATION_NAME_REQUIRED = "OPERATION_NAME_REQUIRED"
QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
# graphql-core stops at 100; each error is formatted, logged and sent, so stop sooner.
MAX_ERRORS = 20
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


@lru_cache(maxsize=1000)
def _verdict(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    limits: QueryLimits,
    hide_suggestions: bool,
) -> list[GraphQLError]:
    refused = document_errors(document, limits)
    if refused:
        return refused
    errors = validate(
        schema, document, rules, max_errors=MAX_ERRORS, hide_suggestions=hide_suggestions
    )
    return _coded(errors, VALIDATION_FAILED)


def _coded(errors: list[GraphQLError], code: str) -> list[GraphQLError]:
    """Every refusal carries a code clients can branch on; the rules' own keep theirs."""
    for error in errors:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": code}
    return errors


def verdict_cache_hits() -> int:
    return _verdict.cache_info().hits


def _operation_name_missing(document: DocumentNode, requested: str | None) -> bool:
    operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
    return requested is None and operations > 1


class BoundedValidation(SchemaExtension):
    def __init__(
        self,
        limits: QueryLimits,
        max_query_length: int,
        extra_rules: Sequence[type[ASTValidationRule]],
        hide_suggestions: bool,
    ) -> None:
        self.limits = limits
        self.max_query_length = max_query_length
        self.extra_rules = tuple(extra_rules)
        self.hide_suggestions = hide_suggestions

    def on_parse(self) -> Iterator[None]:
        # The lexer reads character by character: an 8 MiB string literal is one token
        # but takes a second, so the text is capped before the token limit can help.
        query = self.execution_context.query
        if query is not None and len(query) > self.max_query_length:
            raise GraphQLError(
                f"the query is {len(query)} characters long; "
                f"at most {self.max_query_length} are allowed",
                extensions={"code": QUERY_TOO_LARGE},
            )
        yield

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLSyntaxError as error:
            # The parser cache raises a syntax error (the token and nesting limits among
            # them) out of the parse step; strawberry turns it into the result afterwards.
            _coded([error], PARSE_FAILED)
            raise

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None  # parsing succeeded, or validation would not run
        # The operation name the client sent: strawberry's `operation_name` falls back to the
        # first operation's, which would run it where the spec requires an error.
        requested = getattr(context, "_provided_operation_name", None)
        if _operation_name_missing(document, requested):
            context.pre_execution_errors = [
                GraphQLError(
                    "The document holds several operations: say which to run in operationName.",
                    extensions={"code": OPERATION_NAME_REQUIRED},
                )
            ]
        else:
            rules = (*context.validation_rules, *self.extra_rules, *_STRAWBERRY_RULES)
            # A list strawberry sees as "validated already", so it does not validate again.
            context.pre_execution_errors = _verdict(
                context.schema._schema, document, rules, self.limits, self.hide_suggestions
            )
        yield


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def suggests(error: GraphQLError) -> bool:
    return _SUGGESTION.search(error.message) is not None


def without_suggestions(error: GraphQLError) -> GraphQLError:
    """Production: no "Did you mean ...?" in any error, also those raised while coercing
    variables at execution time (validation itself already leaves them out)."""
    return GraphQLError(
        _SUGGESTION.sub("", error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )
