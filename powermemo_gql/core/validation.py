"""Checks shared by services on client-supplied JSON."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from powermemo_gql.errors import InvalidInput


def field_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a GraphQL input path: blob.chat.messages[0].createdAt."""
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{to_camel(part)}"
    return path


def invalid_input_from(error: ValidationError, prefix: str) -> InvalidInput:
    """The first problem pydantic found, naming the input field it is about."""
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidInput(field_path(prefix, tuple(first["loc"])), message)


def text_problem(text: str) -> str | None:
    """Why no database here could store this text (None when it can)."""
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def check_storable(text: str, field: str) -> None:
    """Raise InvalidInput naming `field` when no database here could store the text."""
    if (problem := text_problem(text)) is not None:
        raise InvalidInput(field, problem)


def storable(value: Any) -> Any:
    """For pydantic field validators: `value`, unless it is text no database can store."""
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    return value


def find_unstorable_text(value: Any, path: str) -> tuple[str, str] | None:
    """(path, problem) of the first string or key of a JSON value that cannot be stored.
    A loop, not recursion: a value may nest as deep as the JSON parser allowed."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            if (problem := text_problem(item)) is not None:
                return where, problem
        elif isinstance(item, dict):
            children = [
                pair
                for key, child in item.items()
                for pair in ((str(key), f"{where} (a key)"), (child, f"{where}.{key}"))
            ]
            pending.extend(reversed(children))
        elif isinstance(item, list):
            pending.extend(reversed([(c, f"{where}[{i}]") for i, c in enumerate(item)]))
    return None


def checked_json_object(value: Any, field: str, max_bytes: int) -> dict[str, Any]:
    """A JSON object within a size limit, storable alike on SQLite and PostgreSQL."""
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object")
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > max_bytes:
        raise InvalidInput(field, f"is {size} bytes; the limit is {max_bytes}")
    # PostgreSQL cannot store NUL in JSON text (SQLite would): refused alike on both.
    if (found := find_unstorable_text(value, field)) is not None:
        raise InvalidInput(field, found[1])
    return value
