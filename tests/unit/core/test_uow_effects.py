"""Effects registered on a unit of work run after its commit, in order, and never after a
rollback; one that fails does not stop the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.uow import after_commit, unit_of_work
from tests.conftest import make_settings


async def test_effects_run_after_commit_in_order_and_never_after_rollback(
    tmp_path: Path,
) -> None:
    engine = create_engine(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}"))
    sessions = create_session_factory(engine)
    seen: list[str] = []
    try:
        async with unit_of_work(sessions) as session:
            await session.execute(text("CREATE TABLE notes (said TEXT)"))

        async def remember(what: str) -> None:
            async with sessions() as reader:
                rows = (await reader.execute(text("SELECT said FROM notes"))).scalars().all()
            seen.append(f"{what}:{','.join(rows)}")

        async def broken() -> None:
            raise RuntimeError("the broker is away")

        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO notes VALUES ('kept')"))
            after_commit(session, lambda: remember("first"))
            after_commit(session, broken)
            after_commit(session, lambda: remember("second"))
            assert seen == []  # nothing runs before the commit

        async def failing_unit() -> None:
            async with unit_of_work(sessions) as session:
                await session.execute(text("INSERT INTO notes VALUES ('lost')"))
                after_commit(session, lambda: remember("rolled back"))
                raise LookupError("a domain error")

        with pytest.raises(LookupError, match="a domain error"):
            await failing_unit()

        # The committed row was visible to both effects; the failing one did not stop the
        # second; the rolled-back unit's effect never ran.
        assert seen == ["first:kept", "second:kept"]
    finally:
        await engine.dispose()
