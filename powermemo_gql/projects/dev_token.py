"""A development root token that outlives restarts: kept in a file beside the SQLite database.

Without it `serve` made a new token each start, and GraphiQL (or a script) had to be given the
new one every time. Development only: production requires POWERMEMO_ROOT_TOKEN.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

SUFFIX = ".root-token"
_OWNER_ONLY = 0o600


class DevTokenError(Exception):
    """The token file exists but can't be used (unreadable, empty, or open to others)."""


def token_file(database_url: str) -> Path | None:
    """`<database file>.root-token`, or None when there is no database file (PostgreSQL, or
    SQLite in memory): then each run has its own token, as before."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    database = Path(url.database)
    return database.with_name(database.name + SUFFIX)


def load_or_create(path: Path) -> tuple[str, bool]:
    """The token stored at `path`, or a new one written there readable by its owner only.
    Returns (token, created)."""
    try:
        # O_EXCL: two servers starting at once can't both write (and disagree on) the token.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _OWNER_ONLY)
    except FileExistsError:
        return _read(path), False
    token = secrets.token_urlsafe(24)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return token, True


def _read(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DevTokenError(
            f"{path} can be read by others (mode {stat.filemode(mode)}); "
            f"run `chmod 600 {path}` or delete it for a new token"
        )
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DevTokenError(f"{path} can't be read: {exc}") from None
    if len(token) < 16:  # as POWERMEMO_ROOT_TOKEN is checked
        raise DevTokenError(f"{path} holds no usable token (16 characters at least); delete it")
    return token
