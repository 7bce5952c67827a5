"""Unit of work: one session, committed at the request/job boundary, then its effects.

An effect that must only happen once the data is durable (a change notification, a flush
scheduled for the user just written to) is registered on the session with `after_commit`,
by the service or use case that made the change. The unit of work runs the effects in order
after its commit, and drops them if it rolls back, so nobody is told of what never happened.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.db import SessionFactory
from powermemo_gql.core.driver_path import allow_driver, end_driver

AfterCommit = Callable[[], Awaitable[None]]
_EFFECTS = "powermemo.after_commit"

logger = logging.getLogger(__name__)


def after_commit(session: AsyncSession, effect: AfterCommit) -> None:
    """Run `effect` once the unit of work holding `session` has committed; never if it
    rolls back."""
    session.info.setdefault(_EFFECTS, []).append(effect)


async def as_one_statement(session: AsyncSession) -> None:
    """The caller's next statement is all its unit of work writes. If nothing ran in the unit
    before it, on PostgreSQL it runs autocommitted: a single statement is atomic by itself, so
    BEGIN and COMMIT would only cost two more round trips. The unit must run no other
    statement after it."""
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return
    connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    await allow_driver(session, connection)  # it may skip SQLAlchemy (core/driver_path.py)


def discard_effects(session: AsyncSession) -> None:
    session.info.pop(_EFFECTS, None)


def take_effects(session: AsyncSession) -> list[AfterCommit]:
    """The effects registered so far, now the caller's to run (see run_all)."""
    effects: list[AfterCommit] = session.info.pop(_EFFECTS, [])
    return effects


async def run_effects(session: AsyncSession) -> None:
    await run_all(take_effects(session))


async def run_all(effects: list[AfterCommit]) -> None:
    """In order. One that fails is logged and the others still run: the commit stands
    whatever they do."""
    for effect in effects:
        try:
            await effect()
        except Exception:
            logger.exception("an after-commit effect failed")


@asynccontextmanager
async def transaction(
    session: AsyncSession, *, then_effects: bool = True
) -> AsyncIterator[AsyncSession]:
    """Commit if the block finishes, roll back if it raises (domain errors included); after
    the commit, run the effects registered on the session (`then_effects=False`: the caller
    takes them with take_effects, to run them later)."""
    try:
        yield session
    except BaseException:
        end_driver(session)
        discard_effects(session)
        await session.rollback()
        raise
    end_driver(session)
    await session.commit()
    if then_effects:
        await run_effects(session)


@asynccontextmanager
async def unit_of_work(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session of its own, in one transaction."""
    async with sessions() as session, transaction(session):
        yield session
