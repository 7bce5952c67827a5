"""Global ids: every Node's id is base64 of "TypeName:raw_id" (strawberry.relay's GlobalID
format), so one id names one object across types; arguments decode them here, once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import strawberry
from strawberry.relay.utils import from_base64, to_base64

from powermemo_gql.errors import InvalidInput, NotFound


@strawberry.interface(description="An object with a global id: fetch it again with node(id:).")
class Node:
    @strawberry.field(
        description="Opaque and global: base64 of the type name and the object's own id."
    )
    def id(self) -> strawberry.ID:
        raise NotImplementedError  # a resolver, not a dataclass field: each type has its own


def global_id(type_name: str, raw: uuid.UUID | str) -> strawberry.ID:
    return strawberry.ID(to_base64(type_name, str(raw)))


def optional_global_id(type_name: str, raw: uuid.UUID | str | None) -> strawberry.ID | None:
    return global_id(type_name, raw) if raw else None


def split_global_id(value: str, field: str) -> tuple[str, str]:
    """(type name, raw id); InvalidInput naming `field` when it is not a global id."""
    try:
        type_name, raw = from_base64(value)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(field, "not a valid id") from None
    if not type_name or not raw:
        raise InvalidInput(field, "not a valid id")
    return type_name, raw


def raw_id(value: str, type_name: str, field: str) -> str:
    """The raw id inside a global id of `type_name`. A malformed id is InvalidInput naming
    `field`; an id of another type is simply not found."""
    found_type, raw = split_global_id(value, field)
    if found_type != type_name:
        raise NotFound(type_name, value)
    return raw


@contextmanager
def named_as_given(given: str) -> Iterator[None]:
    """A NotFound raised inside names the global id the client sent, not the raw id."""
    try:
        yield
    except NotFound as error:
        raise NotFound(error.entity, given) from error
