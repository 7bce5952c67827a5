"""The development root token kept beside the SQLite database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from powermemo_gql.projects.dev_token import DevTokenError, load_or_create, token_file


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///./powermemo.db", Path("powermemo.db.root-token")),
        ("sqlite+aiosqlite:////var/lib/pm/data.db", Path("/var/lib/pm/data.db.root-token")),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite://", None),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/pm", None),
    ],
)
def test_the_token_file_sits_beside_the_database_file(url: str, expected: Path | None) -> None:
    assert token_file(url) == expected


def test_a_new_token_is_written_for_its_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "powermemo.db.root-token"
    token, created = load_or_create(path)
    assert created
    assert len(token) >= 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(path) == (token, False)


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "powermemo.db.root-token"
    path.write_text("a-token-of-twenty-characters\n")
    path.chmod(0o640)
    with pytest.raises(DevTokenError, match="can be read by others"):
        load_or_create(path)


def test_a_file_without_a_usable_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "powermemo.db.root-token"
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(DevTokenError, match="no usable token"):
        load_or_create(path)
