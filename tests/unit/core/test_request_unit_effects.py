"""A request unit runs a block's after-commit effects once the block has let go of the
session: a task an effect starts waits for the unit like any other caller, instead of being
taken for part of the block that started it and using the session alongside the next one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.request_unit import RequestUnit
from powermemo_gql.core.uow import after_commit
from tests.conftest import make_settings


async def test_a_task_started_by_an_effect_waits_for_the_next_block(tmp_path: Path) -> None:
    engine = create_engine(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}"))
    unit = RequestUnit(create_session_factory(engine))
    order: list[str] = []
    started: list[asyncio.Task[None]] = []

    async def later_use_of_the_unit() -> None:
        async with unit.work() as session:
            await session.execute(text("SELECT 1"))
            order.append("task")

    async def effect() -> None:
        order.append("effect")
        started.append(asyncio.create_task(later_use_of_the_unit()))

    try:
        async with unit.work() as session:
            await session.execute(text("SELECT 1"))
            after_commit(session, effect)
        async with unit.work() as session:  # the next block, holding the unit meanwhile
            order.append("next block starts")
            await asyncio.sleep(0.05)  # the task gets its turn on the loop now
            order.append("next block ends")
        await asyncio.wait_for(started[0], timeout=10)
        assert order == ["effect", "next block starts", "next block ends", "task"]
    finally:
        await unit.close()
        await engine.dispose()
