from __future__ import annotations

from pathlib import Path

from powermemo_gql.graphql.schema import schema_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_schema_matches_code() -> None:
    assert SCHEMA_FILE.read_text() == schema_sdl(), (
        "schema.graphql is stale: run `powermemo-gql export-schema --output schema.graphql`"
    )
