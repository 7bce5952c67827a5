"""The schema the client validates its documents against, before anything is sent.

It is the committed `schema.graphql` (exported from the server's code, checked by a test).
Looked up inside the package first (for a wheel that ships it there), then at the root of
a source checkout; when neither exists documents are sent unvalidated, and the server
validates them as always.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from graphql import GraphQLSchema, build_schema

import powermemo_gql

SCHEMA_FILE = "schema.graphql"


@cache
def bundled_schema() -> GraphQLSchema | None:
    """The bundled schema (built once), or None when this installation has none."""
    sdl = bundled_sdl()
    return None if sdl is None else build_schema(sdl)


def bundled_sdl() -> str | None:
    """The SDL of the bundled schema, or None when this installation has none."""
    packaged = resources.files(powermemo_gql).joinpath(SCHEMA_FILE)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(powermemo_gql.__file__).resolve().parent.parent / SCHEMA_FILE
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    return None
