"""Every type, field, argument, enum value and input field of the API is described."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_client_schema,
    specified_scalar_types,
)

from powermemo_gql.graphql.enums import described_enum
from powermemo_gql.graphql.schema import build_schema


def undescribed(schema: GraphQLSchema) -> list[str]:
    """What has no description, as `Type`, `Type.field`, `Type.field(arg)`, `Enum.VALUE`
    or `Input.field`; the introspection types and the built-in scalars are GraphQL's own."""
    missing: list[str] = []
    for name, named in schema.type_map.items():
        if name.startswith("__") or name in specified_scalar_types:
            continue
        if not named.description:
            missing.append(name)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [
                    f"{name}.{field_name}({arg_name})"
                    for arg_name, arg in field.args.items()
                    if not arg.description
                ]
        elif isinstance(named, GraphQLInputObjectType):
            missing += [
                f"{name}.{field_name}"
                for field_name, field in named.fields.items()
                if not field.description
            ]
        elif isinstance(named, GraphQLEnumType):
            missing += [
                f"{name}.{value_name}"
                for value_name, value in named.values.items()
                if not value.description
            ]
    return missing


def app_schema() -> GraphQLSchema:
    """The schema as clients see it: the app's own, read back through introspection."""
    introspection = build_schema().introspect()
    return build_client_schema(introspection)  # type: ignore[arg-type]


def test_every_schema_element_is_described() -> None:
    missing = undescribed(app_schema())
    assert not missing, "Describe these schema elements:\n" + "\n".join(missing)


@strawberry.enum(description="A colour.")
class Colour(Enum):
    RED = "red"
    BLUE = strawberry.enum_value("blue", description="Blue.")


@strawberry.input
class Paint:
    colour: Colour
    coats: int = strawberry.field(default=1, description="How many.")


class Size(Enum):
    SMALL = "small"
    LARGE = "large"


SizeType = described_enum(
    Size, name="Size", description="How big.", values={"SMALL": "Small.", "LARGE": "Large."}
)


@strawberry.type(description="The root.")
class Query:
    @strawberry.field(description="Mix paints.")  # type: ignore[untyped-decorator]
    def mix(
        self,
        paints: list[Paint],
        ratio: Annotated[float, strawberry.argument(description="Share.")] = 0.5,
    ) -> int:
        return 0

    @strawberry.field
    def plain(self) -> int:
        return 0

    @strawberry.field(description="A size.")  # type: ignore[untyped-decorator]
    def size(self) -> SizeType:  # type: ignore[valid-type]
        return Size.SMALL


def toy_schema() -> GraphQLSchema:
    return build_client_schema(strawberry.Schema(Query).introspect())  # type: ignore[arg-type]


def test_the_check_finds_what_is_missing() -> None:
    assert sorted(undescribed(toy_schema())) == [
        "Colour.RED",
        "Paint",
        "Paint.colour",
        "Query.mix(paints)",
        "Query.plain",
    ]


def test_described_enum_describes_every_value() -> None:
    enum = toy_schema().get_type("Size")
    assert isinstance(enum, GraphQLEnumType)
    assert enum.description == "How big."
    assert {name: value.description for name, value in enum.values.items()} == {
        "SMALL": "Small.",
        "LARGE": "Large.",
    }


def test_described_enum_refuses_a_value_left_out() -> None:
    class Shape(Enum):
        ROUND = "round"
        SQUARE = "square"

    with pytest.raises(ValueError, match="SQUARE"):
        described_enum(Shape, name="Shape", description="A shape.", values={"ROUND": "Round."})
