"""A server killed with SIGKILL in the middle of a flush: another server finishes the work.

Real processes, a real LLM server on loopback, one shared database: the first server's flush
is waiting for the LLM when the process dies, so nothing of it can be written. Its lease runs
out, the second server marks the flush abandoned, puts the item back to idle and flushes it
again, exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from gql import Client, gql
from sqlalchemy import select

from powermemo_gql.buffers.models import BufferItem, Flush, FlushLock
from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.global_ids import global_id
from tests.conftest import make_settings
from tests.e2e.test_cli import Server, _env
from tests.integration.memory.conftest import memory_responder
from tests.integration.memory.test_flush import CREATE_USER, FLUSH, INSERT_CHAT
from tests.llm_server import Reply, ScriptedLLM, json_reply, running_llm
from tests.support import CREATE_KEY, CREATE_PROJECT, ROOT_TOKEN, SCHEMA_SDL

T = TypeVar("T")

# The first server is killed within ~50 ms of its summarize request, so this stalls its flush
# with a wide margin; a longer stall only slows the test, as the LLM server's shutdown waits
# for the stalled reply (and a kill that came too late fails the test, it does not pass it).
STALLED_SUMMARY_SECONDS = 6.0
WAIT_SECONDS = 30.0

MEMORY = """
query($id: ID!) {
  user(userId: $id) {
    buffer { items { blobId status } }
    flushes { id status trigger itemCount llmCalls error eventId }
    profile { topic subTopic content sourceBlobIds sourceEventId }
    events(first: 10) { nodes { id summary } }
  }
}
"""

_validator = Client(schema=SCHEMA_SDL)


def _graphql(server: Server, token: str, document: str, **variables: Any) -> dict[str, Any]:
    """Data of a response without errors; the document is validated against schema.graphql."""
    _validator.validate(gql(document))
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def _wait_for(what: str, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_SECONDS} s")
        time.sleep(0.05)


@dataclass
class Snapshot:
    items: list[BufferItem]
    flushes: list[Flush]
    locks: list[FlushLock]


def _snapshot(database_url: str) -> Snapshot:
    """The buffer, flush and lease rows, read straight from the database."""

    async def read() -> Snapshot:
        engine = create_engine(make_settings(database_url))
        try:
            async with create_session_factory(engine)() as session:
                return Snapshot(
                    items=list((await session.scalars(select(BufferItem))).all()),
                    flushes=list((await session.scalars(select(Flush))).all()),
                    locks=list((await session.scalars(select(FlushLock))).all()),
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@pytest.fixture
def start_server(database_url: str, tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Server]]:
    """Starts `powermemo-gql serve` processes; any still alive are killed at the end.

    Depends on `database_url` so that every server is gone before the database is cleaned.
    """
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = Server(env, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait(timeout=10)
        server.output()


def _stalling(request: dict[str, Any]) -> Reply:
    purpose = request["headers"].get("x-powermemo-purpose", "")
    if purpose == "summarize":
        return json_reply({"summary": "never delivered"}, delay=STALLED_SUMMARY_SECONDS)
    return Reply(status=500, content=f"only summarize was expected, got {purpose!r}")


def test_flush_killed_mid_pipeline_is_abandoned_and_redone_once(
    database_url: str, llm: ScriptedLLM, start_server: Callable[[dict[str, str]], Server]
) -> None:
    llm.responder = _stalling
    env = _env(
        POWERMEMO_DATABASE_URL=database_url,
        POWERMEMO_ROOT_TOKEN=ROOT_TOKEN,
        POWERMEMO_LLM_BASE_URL=llm.base_url,
        POWERMEMO_LLM_MAX_RETRIES="0",
        POWERMEMO_FLUSH_LEASE_SECONDS="1",
        POWERMEMO_MIGRATE_ON_STARTUP="true",
    )
    first = start_server(env)
    project = _graphql(first, ROOT_TOKEN, CREATE_PROJECT, name="crash")["createProject"]
    key = _graphql(first, ROOT_TOKEN, CREATE_KEY, projectId=project["project"]["id"])
    secret: str = key["createApiKey"]["secret"]
    _graphql(first, secret, CREATE_USER, id="alice")
    inserted = _graphql(first, secret, INSERT_CHAT, userId="alice", text="I teach chemistry.")
    blob_id: str = inserted["insertBlob"]["blob"]["id"]
    started = _graphql(first, secret, FLUSH, userId="alice", wait=False)
    assert started["flushBuffer"] == {
        "__typename": "FlushBufferPayload",
        "outcome": "SCHEDULED",
        "flush": None,
    }

    _wait_for("summarize request", lambda: llm.requests or None)
    first.process.send_signal(signal.SIGKILL)
    assert first.process.wait(timeout=10) == -signal.SIGKILL
    assert llm.purposes() == ["summarize"], first.output()

    # The dead flush left its traces: the item is claimed, the flush runs, the lease is held.
    crashed = _snapshot(database_url)
    [item] = crashed.items
    [dead] = crashed.flushes
    assert (item.status, item.flush_id) == ("processing", dead.id)
    assert (dead.status, dead.item_count) == ("running", 1)
    assert [lock.flush_id for lock in crashed.locks] == [dead.id]

    # A second server on the same database, with a fast LLM.
    llm.responder = memory_responder()
    asked_before_restart = len(llm.requests)
    # No idle timer to help (the default interval is an hour): recovery itself re-flushes.
    # Its own lease is longer: the dead one (1 s) has run out anyway, and a 1 s lease on a
    # loaded machine can lapse between renewals, so the redo itself would be recovered again.
    second = start_server({**env, "POWERMEMO_FLUSH_LEASE_SECONDS": "8"})

    def redone() -> dict[str, Any] | None:
        user: dict[str, Any] = _graphql(second, secret, MEMORY, id="alice")["user"]
        finished = any(f["status"] == "DONE" for f in user["flushes"])
        return user if finished and user["buffer"]["items"] == [] else None

    user = _wait_for("redone flush", redone)

    abandoned, done = (
        [f for f in user["flushes"] if f["status"] == status] for status in ("ABANDONED", "DONE")
    )
    assert len(user["flushes"]) == 2, user["flushes"]
    assert [f["id"] for f in abandoned] == [global_id("Flush", dead.id)]
    assert "stopped" in abandoned[0]["error"]
    [redo] = done
    assert (redo["trigger"], redo["itemCount"], redo["llmCalls"]) == ("RECOVERY", 1, 2)
    profile = {(e["topic"], e["subTopic"]): e for e in user["profile"]}
    assert profile[("work", "title")]["content"] == "chemistry teacher"
    assert profile[("contact_info", "city")]["content"] == "Lyon"
    for entry in profile.values():
        assert (entry["sourceBlobIds"], entry["sourceEventId"]) == ([blob_id], redo["eventId"])
    assert [e["id"] for e in user["events"]["nodes"]] == [redo["eventId"]]
    # The item went through the pipeline once after the restart, and nothing else ran.
    assert llm.purposes()[asked_before_restart:] == ["summarize", "extract"]

    recovered = _snapshot(database_url)
    assert [(i.status, i.flush_id and global_id("Flush", i.flush_id)) for i in recovered.items] == [
        ("done", redo["id"])
    ]
    assert sorted(f.status for f in recovered.flushes) == ["abandoned", "done"]
    assert recovered.locks == []
