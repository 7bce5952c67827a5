"""Two server instances on one database: the per-user flush lease holds across them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.buffers.models import BufferItem, Flush, FlushLock, FlushTrigger
from powermemo_gql.core.clock import FakeClock
from powermemo_gql.core.global_ids import global_id
from powermemo_gql.core.types import utcnow
from powermemo_gql.events.models import Event
from powermemo_gql.memory.job import Claim, ClaimRefused, FlushOutcome
from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.resources import Resources
from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.integration.memory.conftest import memory_responder
from tests.integration.memory.test_flush import CREATE_USER, FLUSH, INSERT_CHAT
from tests.llm_server import Reply, ScriptedLLM
from tests.support import ROOT_TOKEN, Api, create_project

FLUSHES = "query($id: ID!) { user(userId: $id) { flushes { status } buffer { items { status } } } }"


@asynccontextmanager
async def _instances(settings: Settings) -> AsyncIterator[tuple[Starlette, Starlette]]:
    """Two apps, each with its own engine, LLM client, flusher and (if enabled) scheduler."""
    first, second = create_app(settings), create_app(settings)
    async with (
        LifespanManager(first, startup_timeout=60, shutdown_timeout=60),
        LifespanManager(second, startup_timeout=60, shutdown_timeout=60),
    ):
        yield first, second


async def _alice_with_chat(first: Starlette, second: Starlette) -> tuple[Api, Api]:
    """A project, a user with one chat in her buffer; a client of each instance."""
    project = await create_project(first, Api(first, ROOT_TOKEN), "shared")
    await project.api.ok(CREATE_USER, id="alice")
    await project.api.ok(INSERT_CHAT, userId="alice", text="I teach chemistry in Lyon.")
    return project.api, Api(second, project.api_key)


async def _flush_payload(api: Api) -> dict[str, Any]:
    data = await api.ok(FLUSH, userId="alice", wait=True)
    payload: dict[str, Any] = data["flushBuffer"]
    return payload


async def _flush(api: Api) -> dict[str, Any] | None:
    flush: dict[str, Any] | None = (await _flush_payload(api))["flush"]
    return flush


def _resources(app: Starlette) -> Resources:
    resources: Resources = app.state.resources
    return resources


def _slow(delays: dict[str, float]) -> Callable[[dict[str, Any]], Reply]:
    answer = memory_responder()

    def respond(request: dict[str, Any]) -> Reply:
        reply = answer(request)
        purpose = request["headers"].get("x-powermemo-purpose", "")
        return Reply(content=reply.content, delay=delays.get(purpose, 0.0))

    return respond


async def _stored(app: Starlette) -> tuple[list[str], list[str], list[FlushLock]]:
    """Statuses of the flushes and buffer items, and the leases, as stored."""
    async with _resources(app).sessions() as session:
        flushes = (await session.scalars(select(col(Flush.status)))).all()
        items = (await session.scalars(select(col(BufferItem.status)))).all()
        locks = (await session.scalars(select(FlushLock))).all()
    return list(flushes), list(items), list(locks)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):  # 10 s
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("still waiting after 10 s")


def _recording(
    recover: Callable[[uuid.UUID | None], Awaitable[int]], into: list[int]
) -> Callable[[uuid.UUID | None], Awaitable[int]]:
    async def recording(user_id: uuid.UUID | None = None) -> int:
        count = await recover(user_id)
        into.append(count)
        return count

    return recording


async def test_concurrent_flushes_on_two_instances_process_the_item_once(
    settings: Settings, llm: ScriptedLLM
) -> None:
    llm.responder = _slow({"summarize": 0.3, "extract": 0.3})
    async with _instances(settings) as (first, second):
        api_a, api_b = await _alice_with_chat(first, second)

        results = await asyncio.gather(_flush(api_a), _flush(api_b))

        done = [r for r in results if r is not None]
        assert len(done) == 1, results
        assert (done[0]["status"], done[0]["itemCount"]) == ("DONE", 1)
        assert llm.purposes().count("summarize") == 1
        assert await _stored(first) == (["done"], ["done"], [])
        # Both instances report the same single flush.
        for api in (api_a, api_b):
            user = (await api.ok(FLUSHES, id="alice"))["user"]
            assert user == {"flushes": [{"status": "DONE"}], "buffer": {"items": []}}


async def test_a_flush_on_the_other_instance_waits_for_the_running_one(
    settings: Settings, llm: ScriptedLLM
) -> None:
    llm.responder = _slow({"summarize": 0.3, "extract": 0.3})
    async with _instances(settings) as (first, second):
        api_a, api_b = await _alice_with_chat(first, second)
        running = asyncio.create_task(_flush(api_a))
        await _until(lambda: "summarize" in llm.purposes())
        # New work arrives through the other instance while the first flush runs.
        await api_b.ok(INSERT_CHAT, userId="alice", text="I moved to Paris.")

        waited = await _flush(api_b)
        ran = await asyncio.wait_for(running, timeout=10)

        assert ran is not None
        assert waited is not None
        assert [(f["status"], f["itemCount"]) for f in (ran, waited)] == [("DONE", 1)] * 2
        # One user, one flush at a time: the second started once the first had finished.
        assert llm.purposes()[:3] == ["summarize", "extract", "summarize"]
        async with _resources(second).sessions() as session:
            rows = {
                global_id("Flush", f.id): f for f in (await session.scalars(select(Flush))).all()
            }
        finished = rows[ran["id"]].finished_at
        assert finished is not None
        assert rows[waited["id"]].started_at >= finished


async def test_a_renewed_lease_keeps_a_long_flush_alive_on_the_other_instance(
    database_url: str, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = 0.6
    settings = make_settings(
        database_url,
        llm_base_url=llm.base_url,
        max_buffer_tokens=100_000,
        flush_lease_seconds=lease,
    )
    # The pipeline takes more than twice the lease: only renewals keep the flush alive.
    llm.responder = _slow({"summarize": 1.2, "extract": 0.3})
    async with _instances(settings) as (first, second):
        # Every recover() either instance runs, its scheduler's included, is recorded.
        recovered: list[int] = []
        for app in (first, second):
            flusher = _resources(app).flusher
            monkeypatch.setattr(flusher, "recover", _recording(flusher.recover, recovered))
        api_a, _api_b = await _alice_with_chat(first, second)
        other = _resources(second)

        started = time.monotonic()
        running = asyncio.create_task(_flush(api_a))
        expiries: set[datetime] = set()
        while not running.done():
            assert time.monotonic() - started < 10, "the flush did not finish within 10 s"
            if "summarize" in llm.purposes():  # the flush on the first instance is under way
                assert await other.flusher.recover() == 0
                async with other.sessions() as session:
                    lock = (await session.scalars(select(FlushLock))).one_or_none()
                if lock is not None:
                    expiries.add(lock.expires_at)
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        flush = running.result()

        assert elapsed > 2 * lease
        assert len(expiries) >= 3, expiries  # the lease was pushed forward, again and again
        assert flush is not None
        assert (flush["status"], flush["itemCount"]) == ("DONE", 1)
        assert recovered, "no recovery ran during the flush"
        assert set(recovered) == {0}, recovered
        assert llm.purposes() == ["summarize", "extract"]
        assert await _stored(second) == (["done"], ["done"], [])


@pytest.mark.parametrize("overlap", [True, False], ids=["redo-overlaps", "redo-after"])
async def test_a_flush_whose_lease_ran_out_writes_nothing_and_the_other_instance_redoes_it(
    database_url: str, llm: ScriptedLLM, overlap: bool
) -> None:
    # No schedulers: each recovery below is the explicit one, so the test is deterministic.
    settings = make_settings(
        database_url,
        llm_base_url=llm.base_url,
        max_buffer_tokens=100_000,
        flush_lease_seconds=5,
        background_flushes=False,
    )
    llm.responder = _slow({"summarize": 0.8})
    async with _instances(settings) as (first, second):
        api_a, api_b = await _alice_with_chat(first, second)
        other = _resources(second)
        late = asyncio.create_task(_flush_payload(api_a))
        await _until(lambda: "summarize" in llm.purposes())

        # The first instance stalls past its lease (say, a long pause): the lease runs out.
        async with other.sessions() as session, session.begin():
            lock = (await session.scalars(select(FlushLock))).one()
            lock.expires_at = utcnow()
        assert await other.flusher.recover() == 1
        assert await _stored(second) == (["abandoned"], ["idle"], [])

        if overlap:  # the other instance takes the item over while the first one still runs
            stale, redo = await asyncio.wait_for(asyncio.gather(late, _flush(api_b)), timeout=10)
        else:  # the first one comes back to a recovered flush, and nobody else holds the lease
            stale = await asyncio.wait_for(late, timeout=10)
            assert await _stored(second) == (["abandoned"], ["idle"], [])
            redo = await _flush(api_b)

        # It found its lease gone at commit and wrote nothing.
        assert stale["outcome"] == "INTERRUPTED"
        assert stale["flush"]["status"] == "ABANDONED"
        assert redo is not None
        assert (redo["status"], redo["itemCount"]) == ("DONE", 1)
        assert llm.purposes().count("summarize") == 2
        flushes, items, locks = await _stored(first)
        assert (sorted(flushes), items, locks) == (["abandoned", "done"], ["done"], [])
        async with other.sessions() as session:
            events = (await session.scalars(select(col(Event.id)))).all()
            sources = (await session.scalars(select(col(ProfileEntry.source_event_id)))).all()
        assert [global_id("Event", e) for e in events] == [redo["eventId"]]
        assert [s and global_id("Event", s) for s in sources] == [redo["eventId"]] * 2


@asynccontextmanager
async def _skewed_instances(
    settings: Settings, skew: timedelta
) -> AsyncIterator[tuple[Starlette, Starlette]]:
    """Two apps whose clocks disagree by twice `skew`: the first is behind, the second ahead."""
    now = utcnow()
    first = create_app(settings, clock=FakeClock(now - skew))
    second = create_app(settings, clock=FakeClock(now + skew))
    async with (
        LifespanManager(first, startup_timeout=60, shutdown_timeout=60),
        LifespanManager(second, startup_timeout=60, shutdown_timeout=60),
    ):
        yield first, second


async def test_an_instance_whose_clock_runs_ahead_cannot_take_a_live_lease(
    settings: Settings, llm: ScriptedLLM
) -> None:
    # The lease is 5 s; the clocks are an hour apart either way. Leases run on the database's
    # clock, so the instance ahead still sees the other's lease as live.
    llm.responder = _slow({"summarize": 0.5})
    async with _skewed_instances(settings, timedelta(hours=1)) as (behind, ahead):
        api_behind, _api_ahead = await _alice_with_chat(behind, ahead)
        running = asyncio.create_task(_flush_payload(api_behind))
        await _until(lambda: "summarize" in llm.purposes())

        other = _resources(ahead).flusher
        assert await other.recover() == 0  # not abandoned: the lease is live
        async with _resources(ahead).sessions() as session:
            item = (await session.scalars(select(BufferItem))).one()
        refused = await other.claim(item.project_id, item.user_id, FlushTrigger.MANUAL)
        assert refused is ClaimRefused.LEASE_HELD
        busy = await other.flush(item.project_id, item.user_id, FlushTrigger.MANUAL)
        assert busy.outcome is FlushOutcome.BUSY

        ran = await asyncio.wait_for(running, timeout=10)
        assert (ran["outcome"], ran["flush"]["status"]) == ("FLUSHED", "DONE")
        assert llm.purposes().count("summarize") == 1
        assert await _stored(ahead) == (["done"], ["done"], [])


@pytest.mark.settings(flush_lease_seconds=0.5)
async def test_an_instance_whose_clock_runs_behind_sees_a_dead_lease_run_out(
    settings: Settings, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    async with _skewed_instances(settings, timedelta(hours=1)) as (behind, ahead):
        _api_behind, api_ahead = await _alice_with_chat(behind, ahead)
        async with _resources(ahead).sessions() as session:
            item = (await session.scalars(select(BufferItem))).one()
        # The instance ahead starts a flush and dies: nothing renews its 0.5 s lease.
        claimed = await _resources(ahead).flusher.claim(
            item.project_id, item.user_id, FlushTrigger.MANUAL
        )
        assert isinstance(claimed, Claim)

        # Half a second later on the database's clock, the instance an hour behind sees the
        # lease gone (on its own clock it would have an hour and a half to go).
        recovered = 0
        for _ in range(200):  # 10 s: CI machines can be slow
            recovered = await _resources(behind).flusher.recover()
            if recovered:
                break
            await asyncio.sleep(0.05)
        assert recovered == 1
        redone = await _flush(api_ahead)
        assert redone is not None
        assert (redone["status"], redone["itemCount"]) == ("DONE", 1)


@pytest.mark.settings(buffer_flush_interval=3600.0)
async def test_instances_whose_clocks_drift_agree_on_which_buffers_are_idle(
    settings: Settings, llm: ScriptedLLM
) -> None:
    # A buffer is idle after an hour; the clocks are four hours apart. Items are stamped and the
    # cutoff is taken on the database's clock, so the instance two hours ahead does not flush
    # a buffer written a moment ago (on its own clock it would be two hours old).
    llm.responder = memory_responder()
    async with _skewed_instances(settings, timedelta(hours=2)) as (behind, ahead):
        await _alice_with_chat(behind, ahead)
        assert await _resources(ahead).flusher.flush_due() == []
        assert await _resources(behind).flusher.flush_due() == []
        assert await _stored(ahead) == ([], ["idle"], [])

        # An hour passes (the fake clock's advance moves the database time it compares with):
        # now the instance ahead finds the buffer idle.
        clock = _resources(ahead).clock
        assert isinstance(clock, FakeClock)
        clock.advance(3601)
        assert await _resources(behind).flusher.flush_due() == []  # its clock did not move
        due = await _resources(ahead).flusher.flush_due()
        assert [trigger for _user, trigger in due] == [FlushTrigger.IDLE]
        await _until(lambda: llm.purposes().count("summarize") == 1)  # the flush it started
