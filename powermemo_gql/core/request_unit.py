"""The unit of work of one HTTP request: one session for its authentication, reads and writes.

Every resolver of a request asks this unit for its session (`work()`), so the request costs
one pool checkout and no transaction of its own per resolver. How a block ends depends on
the operation being run (set by graphql/operation_unit.py before it executes):

- WRITE (a mutation, and anything before the operation is known, e.g. authentication):
  each block is one transaction, committed when it ends; its after-commit effects run once
  the block has let go of the session.
  The connection goes back to the pool with the commit, so a mutation that waits on the LLM
  holds none meanwhile.
- READ (a query): blocks share one connection that autocommits, so on PostgreSQL a read
  costs its statements' round trips and no BEGIN / COMMIT; it is released at the end. The
  hottest reads run on its driver connection itself (core/driver_path.py).
- SNAPSHOT (a query that reads `changesCursor`): the reads share one transaction that sees
  a single snapshot (REPEATABLE READ on PostgreSQL, a deferred BEGIN on SQLite), so the cursor
  and the data read with it agree: a commit racing the read falls wholly after both.

Resolvers of one operation run concurrently (sibling fields, DataLoader batches), while a
session serves one statement at a time: blocks take turns on a lock. A block opened inside
another one of the same task (a service calling another service) joins it.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.driver_path import allow_driver, end_driver
from powermemo_gql.core.uow import AfterCommit, run_all, run_effects, take_effects, transaction
from powermemo_gql.errors import DomainError


class Mode(enum.Enum):
    WRITE = "write"
    READ = "read"
    SNAPSHOT = "snapshot"


# The unit whose lock the current task holds (tasks started inside a block inherit it).
_holding: contextvars.ContextVar[RequestUnit | None] = contextvars.ContextVar(
    "powermemo_request_unit", default=None
)


class RequestUnit:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self._mode = Mode.WRITE
        self._reading = False  # a READ / SNAPSHOT connection is open
        self.read_lost = False  # ... and it was lost (see take_lost_read)
        self._read_broken = False  # ... and a statement on it failed
        self._autocommits = False  # ... and it autocommits (PostgreSQL, READ)

    def begin_operation(self, mode: Mode) -> None:
        """The next operation's mode (batched requests run several, one after another,
        each ended with end_operation)."""
        self._mode = mode

    async def end_operation(self) -> None:
        """Release the connection the last operation's reads held. A query may write too
        (usage records): that is committed here, and its effects run after."""
        self._mode = Mode.WRITE
        if self._session is None or not self._reading:
            return
        self._reading = False
        end_driver(self._session)
        broken, self._read_broken = self._read_broken, False
        autocommitted, self._autocommits = self._autocommits, False
        if broken or self.read_lost or autocommitted:
            # Nothing to commit (what an autocommitting connection wrote is committed):
            # closing releases the connection, and the next operation starts afresh.
            session, self._session = self._session, None
            effects = [] if broken or self.read_lost else take_effects(session)
            await session.close()
            await run_all(effects)
            return
        await self._session.commit()
        await run_effects(self._session)

    def take_lost_read(self) -> bool:
        """Whether the last query lost its connection (one the server had closed, found
        only on use): a query changes nothing, so it can simply run again, once."""
        lost, self.read_lost = self.read_lost, False
        return lost

    async def close(self) -> None:
        await self.end_operation()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @asynccontextmanager
    async def work(self) -> AsyncIterator[AsyncSession]:
        if _holding.get() is self:  # nested in a block of this unit: join it
            yield self._open()
            return
        effects: list[AfterCommit] = []
        async with self._lock:
            token = _holding.set(self)
            try:
                if self._mode is Mode.WRITE:
                    async with transaction(self._open(), then_effects=False) as session:
                        yield session
                    effects = take_effects(session)
                else:
                    try:
                        session = await self._read_session()
                        yield session
                        if session.new or session.dirty or session.deleted:
                            await session.flush()
                    except DomainError:  # a caller's mistake: the session is fine
                        raise
                    except BaseException as error:  # a timeout, the database gone, a bug
                        self._read_broken = True
                        if isinstance(error, DBAPIError) and error.connection_invalidated:
                            self.read_lost = True
                        raise
            finally:
                _holding.reset(token)
                if self._session is not None:
                    # As if each block had a session of its own: the rows it returned are
                    # detached, and the next block reads afresh what others changed since.
                    self._session.expunge_all()
        # Committed: the effects run outside the block, so they hold up no sibling resolver,
        # and a task one of them starts is not taken for a part of this block.
        await run_all(effects)

    def _open(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessions()
        return self._session

    async def _read_session(self) -> AsyncSession:
        session = self._open()
        if self._reading:
            return session
        self._reading = True
        dialect = session.bind.dialect.name if session.bind is not None else ""
        if dialect == "postgresql":
            level = "REPEATABLE READ" if self._mode is Mode.SNAPSHOT else "AUTOCOMMIT"
            connection = await session.connection(execution_options={"isolation_level": level})
            if self._mode is Mode.READ:  # no transaction: the hot reads may skip SQLAlchemy
                self._autocommits = True
                await allow_driver(session, connection)
        elif self._mode is Mode.SNAPSHOT:
            # SQLite's driver begins no transaction for a SELECT: each would see the latest
            # commit. An explicit BEGIN makes the reads share the snapshot of the first one.
            await session.execute(text("BEGIN"))
        return session
