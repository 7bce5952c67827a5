"""Global ids: base64 of "TypeName:raw_id" (strawberry.relay's GlobalID format), so one id
names one object across types. The API and the MCP tools hand these out and take them back;
services only ever see raw ids."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from powermemo_gql.errors import InvalidInput, NotFound


def global_id(type_name: str, raw: uuid.UUID | str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


def split_global_id(value: str, field: str) -> tuple[str, str]:
    """(type name, raw id); InvalidInput naming `field` when it is not a global id."""
    try:
        type_name, colon, raw = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(field, "not a valid id") from None
    if not (type_name and colon and raw):
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
def decoded_id(value: str, type_name: str, field: str) -> Iterator[str]:
    """The raw id of a global id argument, for the block that looks it up (see raw_id); a
    NotFound raised in the block names the global id as sent, not the raw one."""
    try:
        yield raw_id(value, type_name, field)
    except NotFound as error:
        raise NotFound(error.entity, value) from error
