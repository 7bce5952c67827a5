"""Running an operator command on the database, with its failures as one plain line."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from powermemo_gql.observability.logs import reason_of

T = TypeVar("T")
# aiosqlite stops the worker thread of a connection that failed to open when that connection
# is collected; this gives the thread time to finish while the event loop still runs.
_SETTLE_SECONDS = 0.2


class DatabaseTrouble(Exception):
    """The database could not be used (unreachable, unmigrated, a path that is not there)."""


def run_on_database(command: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(command), but a database failure ends as DatabaseTrouble, settled inside
    the loop: else aiosqlite's worker thread reports 'Event loop is closed' with a traceback
    after the command has printed its message."""
    return asyncio.run(_settled(command))


async def _settled(command: Coroutine[Any, Any, T]) -> T:
    try:
        return await command
    except (OSError, SQLAlchemyError) as exc:
        trouble = DatabaseTrouble(_describe(exc))
    gc.collect()  # the failed connection, freed with the exception above
    await asyncio.sleep(_SETTLE_SECONDS)
    raise trouble


def _describe(exc: BaseException) -> str:
    reason = reason_of(getattr(exc, "orig", None) or exc)
    unmigrated = "table" in reason or "does not exist" in reason
    hint = " (run `powermemo-gql migrate` first)" if unmigrated else ""
    return f"the database could not be used: {reason}{hint}"


def report(trouble: DatabaseTrouble) -> int:
    print(f"powermemo-gql: {trouble}", file=sys.stderr)
    return 1
