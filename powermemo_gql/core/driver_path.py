"""Hot statements that run on the asyncpg connection itself, when that is safe.

A statement through SQLAlchemy's execution (greenlet hop, execution context, result object)
costs about 0.4 ms of CPU on top of asyncpg's own ~0.1 ms; the profile query runs two. So the
hottest statements are `DriverStatement`s: a Core select (or a write returning rows) of table
columns, compiled once, whose rows become records. It runs on the driver only where that
changes nothing:

- PostgreSQL, on a connection that autocommits, so there is no transaction for the driver
  to bypass: a request unit's READ block (core/request_unit.py), or a unit of work whose one
  statement it is (core/uow.py: as_one_statement, insertBlob). A SNAPSHOT or WRITE block,
  SQLite, or any other session runs it through SQLAlchemy, as before.
- Nothing listens for statements on the engine (instrumentation, the tests that count
  statements): they would not see a statement the driver runs.

A statement that fails on the driver runs once more through SQLAlchemy, which reports the
failure in its usual terms and invalidates a dead connection (a query is then run again on a
fresh one, graphql/view.py); a write fails there the same way, as nothing of it was written.
A statement the server cancelled for running too long is reported as it is (core/db.py:
DATABASE_BUSY), not waited for twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from powermemo_gql.core.db import statement_cancelled

R = TypeVar("R")

# session.info key of the driver connection the session's statements may use, while set.
DRIVER_CONNECTION = "powermemo.driver_connection"

Processor = Callable[[Any], Any] | None


async def allow_driver(session: AsyncSession, connection: AsyncConnection) -> None:
    """Let DriverStatements of this session run on `connection`'s driver (an autocommitting
    PostgreSQL connection), unless something listens for the engine's statements; until
    end_driver."""
    if connection.dialect.name != "postgresql":
        return
    if connection.sync_engine.dispatch.before_cursor_execute:
        return
    raw = await connection.get_raw_connection()
    session.info[DRIVER_CONNECTION] = raw.driver_connection


def end_driver(session: AsyncSession) -> None:
    session.info.pop(DRIVER_CONNECTION, None)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order of $1, $2, ...
    defaults: dict[str, Any]  # values the statement holds itself (literals)
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]

    @classmethod
    def of(cls, statement: Select[Any], dialect: Dialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        binds = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        )
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        return cls(compiled.string, names, compiled.params, binds, results)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = [params[n] if n in params else self.defaults[n] for n in self.names]
        return [v if p is None else p(v) for v, p in zip(values, self.binds, strict=True)]

    def row(self, record: Sequence[Any]) -> list[Any]:
        return [v if p is None else p(v) for v, p in zip(record, self.results, strict=True)]


class DriverStatement(Generic[R]):
    """`statement` (its columns in the order `make` takes them); `postgresql`: the same read
    written for the driver where the two differ (`= ANY(:ids)` for an expanding IN)."""

    def __init__(
        self,
        statement: Select[Any],
        make: Callable[..., R],
        *,
        postgresql: Select[Any] | None = None,
    ) -> None:
        self._statement = statement
        self._driver_statement = statement if postgresql is None else postgresql
        self._make = make
        self._compiled: _Compiled | None = None

    async def all(self, session: AsyncSession, params: Mapping[str, Any]) -> list[R]:
        driver = session.info.get(DRIVER_CONNECTION)
        if driver is not None:
            compiled = self._compiled_for(session)
            arguments = compiled.arguments(params)
            try:
                records = await driver.fetch(compiled.sql, *arguments)
            except Exception as error:  # from the database or the connection
                if statement_cancelled(error):
                    raise
            else:
                return [self._make(*compiled.row(record)) for record in records]
        return [self._make(*row) for row in await session.execute(self._statement, params)]

    async def first(self, session: AsyncSession, params: Mapping[str, Any]) -> R | None:
        rows = await self.all(session, params)
        return rows[0] if rows else None

    def _compiled_for(self, session: AsyncSession) -> _Compiled:
        if self._compiled is None:
            bind = session.get_bind()
            self._compiled = _Compiled.of(self._driver_statement, bind.dialect)
        return self._compiled
