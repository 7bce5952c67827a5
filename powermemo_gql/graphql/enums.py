"""Domain enums exposed as GraphQL enums, with a description for the type and each value."""

from __future__ import annotations

from collections.abc import Mapping
from enum import EnumMeta
from typing import TypeVar

import strawberry
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

E = TypeVar("E", bound=EnumMeta)


def described_enum(cls: E, *, name: str, description: str, values: Mapping[str, str]) -> E:
    """`strawberry.enum(cls)` with every value described.

    The domain enums (models, services) stay free of GraphQL: their values cannot be
    `strawberry.enum_value`s, so the descriptions are set on the definition strawberry makes.
    `values` must name every member, so a member added later cannot go undescribed.
    """
    wrapped = strawberry.enum(cls, name=name, description=description)
    definition = _definition(wrapped)
    names = {value.name for value in definition.values}
    if names != set(values):
        raise ValueError(f"{name}: describe exactly {sorted(names)}, not {sorted(values)}")
    for value in definition.values:
        value.description = values[value.name]
    return wrapped


def _definition(enum_type: object) -> StrawberryEnumDefinition:
    assert has_enum_definition(enum_type)
    return enum_type.__strawberry_definition__
