"""The memoised measures agree with the stock limiters they replace, on documents small enough
for the stock ones to expand."""

from __future__ import annotations

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse, validate
from graphql import build_schema as schema_from_sdl
from strawberry.extensions.max_aliases import count_fields_with_alias
from strawberry.extensions.query_depth_limiter import create_validator

from powermemo_gql.graphql.limits import DocumentMeasure, QueryLimits, document_errors
from powermemo_gql.graphql.schema import build_schema

DOCUMENTS = [
    "{ health { ok } }",
    "{ __typename }",
    '{ blob(id: "QmxvYjp4") { user { blobs { nodes { id } } } } }',
    '{ a: user(userId: "1") { id } b: user(userId: "2") { ...U } } fragment U on User { c: id }',
    '{ ...Q } fragment Q on Query { user(userId: "1") { ...U '
    "... on User { blobs { nodes { id } } } } }"
    " fragment U on User { x: blobs { nodes { y: user { id } } } }",
    "{ __schema { types { fields { type { name } } } } }",
    "query A { health { ok } } query B { h: health { ok } }",
]


def _stock_depths(document: str) -> dict[str, int]:
    depths: dict[str, int] = {}
    rule = create_validator(100, None, callback=depths.update)
    validate(schema_from_sdl(build_schema().as_str()), parse(document), [rule])
    return depths


@pytest.mark.parametrize("document", DOCUMENTS)
def test_depth_and_aliases_match_the_stock_limiters(document: str) -> None:
    ast = parse(document)
    fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
    measured = DocumentMeasure(ast).expanded_operations()
    stock_depths = _stock_depths(document)
    for operation, expanded in measured:
        assert isinstance(operation, OperationDefinitionNode)
        name = operation.name.value if operation.name else "anonymous"
        assert expanded.depth == stock_depths[name], name
        assert expanded.aliases == count_fields_with_alias(operation, fragments), name


LIMITS = QueryLimits(max_depth=12, max_aliases=30, max_directives=20, max_fields=2000)


def test_a_cycle_is_refused_naming_it() -> None:
    errors = document_errors(
        parse("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"), LIMITS
    )
    assert [e.message for e in errors] == ["fragments spread each other in a cycle: A -> B -> A"]
    assert errors[0].extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "fragment_cycle"}


def test_a_spread_is_counted_every_time_it_is_spread() -> None:
    document = (
        "{ ...A ...A } fragment A on Query { ...B ...B } fragment B on Query { x: health { ok } }"
    )
    ((_, expanded),) = DocumentMeasure(parse(document)).expanded_operations()
    # Root: 2 spreads + 2 x A; A: 2 spreads + 2 x B; B: health and ok.
    assert expanded.selections == 2 + 2 * (2 + 2 * 2)
    assert expanded.aliases == 4
    assert expanded.depth == 1
