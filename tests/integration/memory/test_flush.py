"""Buffers flush through the real openai client into profiles and events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.buffers.models import BufferItem, Flush, FlushLock, FlushTrigger
from powermemo_gql.core.clock import FakeClock
from powermemo_gql.core.types import utcnow
from powermemo_gql.events.models import Event
from powermemo_gql.memory.job import Claim
from powermemo_gql.profiles.models import ProfileEntry, ProfileRevision
from powermemo_gql.profiles.repository import ProfileRepository
from powermemo_gql.recall.models import EventFact
from powermemo_gql.resources import Resources
from tests.conftest import FAKE_NOW, ProjectFactory, make_settings
from tests.integration.memory.conftest import memory_responder, scheduler_asleep
from tests.llm_server import Reply, ScriptedLLM
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

CREATE_USER = "mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }"
INSERT_CHAT = """
mutation($userId: ID!, $text: String!) {
  insertBlob(input: {userId: $userId, blob: {chat: {messages: [
    {role: USER, content: $text, alias: "Alice"}
  ]}}}) { ... on InsertBlobPayload { blob { id } } }
}
"""
FLUSH = """
mutation($userId: ID!, $wait: Boolean!) {
  flushBuffer(input: {userId: $userId, wait: $wait}) {
    __typename
    ... on FlushBufferPayload {
      outcome
      flush { id status trigger itemCount llmCalls inputTokens outputTokens error eventId }
    }
    ... on NotFound { code }
  }
}
"""
RETRY = """
mutation($userId: ID!) {
  retryFailedBuffer(input: {userId: $userId, wait: true}) {
    ... on RetryFailedBufferPayload { retriedItems flush { status itemCount } }
  }
}
"""
MEMORY = """
query($id: ID!) {
  user(userId: $id) {
    buffer { status totalTokens idleTokens failedCount items { blobId status error tokenCount } }
    profile { topic subTopic content source sourceBlobIds sourceEventId history { content action } }
    events(first: 10) {
      nodes {
        id summary tags { tag value }
        profileDelta { action topic subTopic content previous }
      }
    }
    flushes { status trigger llmCalls inputTokens outputTokens }
  }
}
"""


async def _user_with_chat(api: Api, text: str = "I teach chemistry in Lyon.") -> str:
    await api.ok(CREATE_USER, id="alice")
    inserted = await api.ok(INSERT_CHAT, userId="alice", text=text)
    blob_id: str = inserted["insertBlob"]["blob"]["id"]
    return blob_id


async def _flush_payload(api: Api, wait: bool = True) -> dict[str, Any]:
    data = await api.ok(FLUSH, userId="alice", wait=wait)
    payload: dict[str, Any] = data["flushBuffer"]
    return payload


async def _flush(api: Api, wait: bool = True) -> dict[str, Any] | None:
    flush: dict[str, Any] | None = (await _flush_payload(api, wait))["flush"]
    return flush


async def _memory(api: Api) -> dict[str, Any]:
    user: dict[str, Any] = (await api.ok(MEMORY, id="alice"))["user"]
    return user


async def _newest_flush_once_done(api: Api) -> dict[str, Any]:
    """Wait (20 s at most: CI machines can be slow) for a background flush to finish; the
    newest flush."""
    for _ in range(400):
        flushes: list[dict[str, Any]] = (await _memory(api))["flushes"]
        if flushes and flushes[0]["status"] == "DONE":
            return flushes[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no flush finished within 20 s")


async def test_flush_turns_chat_into_profile_and_event(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    blob_id = await _user_with_chat(project.api)
    before = (await _memory(project.api))["buffer"]
    assert before["idleTokens"] > 0
    assert before["status"] == "IDLE"

    flush = await _flush(project.api)

    assert flush is not None
    assert flush["status"] == "DONE"
    assert flush["trigger"] == "MANUAL"
    assert flush["itemCount"] == 1
    # summarize + extract; new entries need no merge call, no event tags are configured.
    assert llm.purposes() == ["summarize", "extract"]
    assert (flush["llmCalls"], flush["inputTokens"], flush["outputTokens"]) == (2, 200, 40)
    assert "Alice: I teach chemistry in Lyon." in llm.requests[0]["body"]["messages"][1]["content"]

    memory = await _memory(project.api)
    assert memory["buffer"] == {
        "status": "EMPTY",
        "totalTokens": 0,
        "idleTokens": 0,
        "failedCount": 0,
        "items": [],
    }
    profile = {(e["topic"], e["subTopic"]): e for e in memory["profile"]}
    assert profile[("work", "title")]["content"] == "chemistry teacher"
    assert profile[("contact_info", "city")]["content"] == "Lyon"
    for entry in profile.values():
        assert entry["source"] == "LLM"
        assert entry["sourceBlobIds"] == [blob_id]
        assert entry["sourceEventId"] == flush["eventId"]
    [event] = memory["events"]["nodes"]
    assert event["id"] == flush["eventId"]
    assert event["summary"] == "Alice teaches chemistry in Lyon."
    delta = event["profileDelta"]
    assert {(d["action"], d["previous"]) for d in delta} == {("ADD", None)}
    assert sorted((d["topic"], d["subTopic"], d["content"]) for d in delta) == sorted(
        (e["topic"], e["subTopic"], e["content"]) for e in memory["profile"]
    )
    assert memory["flushes"][0]["llmCalls"] == 2
    usage = await project.api.ok("{ llmUsage { flushes llmCalls inputTokens outputTokens } }")
    assert usage["llmUsage"] == {
        "flushes": 1,
        "llmCalls": 2,
        "inputTokens": 200,
        "outputTokens": 40,
    }


async def test_usage_is_per_project(
    project: ProjectHandle, llm: ScriptedLLM, make_project: ProjectFactory
) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    await _flush(project.api)
    other = await make_project("other")
    usage = await other.api.ok("{ llmUsage { flushes llmCalls inputTokens outputTokens } }")
    assert usage["llmUsage"] == {"flushes": 0, "llmCalls": 0, "inputTokens": 0, "outputTokens": 0}


async def _flush_a_move(project: ProjectHandle, llm: ScriptedLLM, merged: str) -> None:
    """Alice lives in Lyon (one flush), then moves to Paris: a second flush, whose merge
    updates the city entry to `merged`."""
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    await _flush(project.api)
    llm.responder = memory_responder(
        facts=[{"topic": "contact_info", "sub_topic": "city", "content": "Paris"}],
        decisions=[{"index": 0, "action": "update", "content": merged}],
    )
    await project.api.ok(INSERT_CHAT, userId="alice", text="I moved to Paris.")
    flush = await _flush(project.api)
    assert flush is not None
    assert flush["status"] == "DONE"


async def test_existing_entries_are_merged_with_history(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    await _flush_a_move(project, llm, merged="Paris (moved from Lyon)")

    assert llm.purposes()[-3:] == ["summarize", "extract", "merge"]
    merge_input = llm.requests[-1]["body"]["messages"][1]["content"]
    assert '"current": "Lyon"' in merge_input
    assert '"observation": "Paris"' in merge_input
    memory = await _memory(project.api)
    city = next(e for e in memory["profile"] if e["subTopic"] == "city")
    assert city["content"] == "Paris (moved from Lyon)"
    assert city["history"] == [{"content": "Lyon", "action": "UPDATE"}]
    assert memory["events"]["nodes"][0]["profileDelta"] == [
        {
            "action": "UPDATE",
            "topic": "contact_info",
            "subTopic": "city",
            "content": "Paris (moved from Lyon)",
            "previous": "Lyon",
        }
    ]


async def test_aborted_merge_changes_nothing(project: ProjectHandle, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    await _flush(project.api)
    llm.responder = memory_responder(
        facts=[{"topic": "contact_info", "sub_topic": "city", "content": "Lyon"}],
        decisions=[{"index": 0, "action": "abort"}],
    )
    await project.api.ok(INSERT_CHAT, userId="alice", text="Lyon is nice.")
    assert (await _flush(project.api) or {}).get("status") == "DONE"
    city = next(e for e in (await _memory(project.api))["profile"] if e["subTopic"] == "city")
    assert (city["content"], city["history"]) == ("Lyon", [])


async def test_garbage_answer_is_asked_again(project: ProjectHandle, llm: ScriptedLLM) -> None:
    llm.add(Reply(content="Sure! Here is your summary: none"), Reply(content='{"summary": null}'))
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    # An unparsable answer is asked again once: both summarize tries above are garbage.
    flush = await _flush(project.api)
    assert flush is not None
    assert flush["status"] == "FAILED"
    assert "summarize gave no usable answer" in flush["error"]

    llm.add(Reply(content="```json\n" + '{"summary": "ok"}' + "\n```"))
    retried = await project.api.ok(RETRY, userId="alice")
    assert retried["retryFailedBuffer"] == {
        "retriedItems": 1,
        "flush": {"status": "DONE", "itemCount": 1},
    }


async def test_a_malformed_llm_answer_fails_the_flush_with_its_reason(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    # A 200 that is no chat completion, every time: retried, then the flush fails naming why.
    llm.responder = lambda _request: Reply(raw="<html>proxy error</html>", content_type="text/html")
    await _user_with_chat(project.api)

    flush = await _flush(project.api)

    assert flush is not None
    assert flush["status"] == "FAILED"
    assert flush["error"] == (
        "LLM summarize failed after 2 attempts: malformed answer: the body is not JSON"
    )
    assert flush["llmCalls"] == 0
    assert len(llm.requests) == 2  # llm_max_retries is 1 in these tests
    memory = await _memory(project.api)
    assert memory["buffer"]["items"][0]["error"] == flush["error"]
    assert memory["profile"] == []


async def test_llm_failure_marks_items_failed_and_writes_nothing(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    llm.responder = lambda _request: Reply(status=500)
    await _user_with_chat(project.api)

    flush = await _flush(project.api)

    assert flush is not None
    assert flush["status"] == "FAILED"
    assert "HTTP 500" in flush["error"]
    memory = await _memory(project.api)
    assert memory["buffer"]["failedCount"] == 1
    assert memory["buffer"]["status"] == "FAILED"
    assert "HTTP 500" in memory["buffer"]["items"][0]["error"]
    assert memory["profile"] == []
    assert memory["events"]["nodes"] == []

    llm.responder = memory_responder()
    retried = await project.api.ok(RETRY, userId="alice")
    assert retried["retryFailedBuffer"]["flush"]["status"] == "DONE"
    assert len((await _memory(project.api))["profile"]) == 2


async def test_rate_limit_is_retried_within_a_flush(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.add(Reply(status=429))
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    flush = await _flush(project.api)
    assert flush is not None
    assert flush["status"] == "DONE"


@pytest.mark.fake_clock
async def test_an_entry_a_flush_updates_is_stamped_with_the_apps_clock(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    await _flush_a_move(project, llm, merged="Paris")

    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        entry = await session.scalar(
            select(ProfileEntry).where(col(ProfileEntry.sub_topic) == "city")
        )
    assert entry is not None
    assert entry.content == "Paris"
    assert entry.updated_at == FAKE_NOW


STAMPS = """
{
  user(userId: "alice") {
    profile { subTopic createdAt updatedAt history { createdAt } }
    events(first: 10) { nodes { createdAt } }
    changes(first: 50) { nodes { kind createdAt } }
  }
}
"""


@pytest.mark.fake_clock
async def test_what_a_flush_writes_is_stamped_with_the_apps_clock(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    await _flush_a_move(project, llm, merged="Paris")

    user = (await project.api.ok(STAMPS))["user"]
    assert len(user["events"]["nodes"]) == 2
    assert {datetime.fromisoformat(e["createdAt"]) for e in user["events"]["nodes"]} == {FAKE_NOW}
    assert len(user["profile"]) == 2
    for entry in user["profile"]:
        assert datetime.fromisoformat(entry["createdAt"]) == FAKE_NOW
        assert datetime.fromisoformat(entry["updatedAt"]) == FAKE_NOW
    [city] = [entry for entry in user["profile"] if entry["subTopic"] == "city"]
    [revision] = city["history"]  # Lyon, kept when the second flush merged in Paris
    assert datetime.fromisoformat(revision["createdAt"]) == FAKE_NOW
    changes = user["changes"]["nodes"]
    assert {change["kind"] for change in changes} >= {"ENTRY_ADDED", "BUFFER_FLUSHED"}
    assert {datetime.fromisoformat(change["createdAt"]) for change in changes} == {FAKE_NOW}
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        facts = (await session.scalars(select(EventFact))).all()
    assert facts
    assert {fact.created_at for fact in facts} == {FAKE_NOW}


async def test_profile_writes_of_a_flush_are_one_transaction(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    await _flush(project.api)
    llm.responder = memory_responder(
        facts=[
            {"topic": "interest", "sub_topic": "music", "content": "jazz"},
            {"topic": "contact_info", "sub_topic": "city", "content": "Paris"},
        ],
        decisions=[{"index": 0, "action": "update", "content": "Paris"}],
    )
    await project.api.ok(INSERT_CHAT, userId="alice", text="I like jazz and moved to Paris.")

    async def broken_update(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ProfileRepository, "update_content", broken_update)
    flush = await _flush(project.api)

    assert flush is not None
    assert flush["status"] == "FAILED"
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        entries = (await session.scalars(select(ProfileEntry))).all()
        events = await session.scalar(select(func.count()).select_from(Event))
    # Neither the new "music" entry nor a second event was written.
    assert sorted(e.sub_topic for e in entries) == ["city", "title"]
    assert events == 1


@pytest.mark.settings(max_buffer_tokens=5, background_flushes=True)
async def test_size_trigger_flushes_in_the_background(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api, "A long enough message to pass five tokens, surely.")
    flush = await _newest_flush_once_done(project.api)
    assert flush["trigger"] == "SIZE"


async def test_idle_buffer_is_flushed_by_the_timer(llm: ScriptedLLM, database_url: str) -> None:
    # An hour of idleness on a fake clock: the test takes no longer than the flush.
    llm.responder = memory_responder()
    clock = FakeClock()
    interval = 3600.0
    settings = make_settings(
        database_url, llm_base_url=llm.base_url, buffer_flush_interval=interval
    )
    app = create_app(settings, clock=clock)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        resources: Resources = app.state.resources
        project = await create_project(app, Api(app, ROOT_TOKEN), "timer")
        await _user_with_chat(project.api, "Quiet message.")

        # The item was stamped by the database a moment ago; the fake clock's advance stands
        # for the time that passes after it.
        await scheduler_asleep(clock)
        clock.advance(interval - 5)
        assert await resources.flusher.flush_due() == []  # 5 s short of the interval
        assert (await _memory(project.api))["flushes"] == []

        await scheduler_asleep(clock)
        clock.advance(10)  # the scheduler wakes past the interval and flushes
        flush = await _newest_flush_once_done(project.api)
        assert flush["trigger"] == "IDLE"


async def test_concurrent_flushes_of_one_user_process_each_item_once(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    def slow(request: dict[str, Any]) -> Reply:
        reply = memory_responder()(request)
        return Reply(content=reply.content, delay=0.2)

    llm.responder = slow
    await _user_with_chat(project.api)
    payloads = await asyncio.gather(*(_flush_payload(project.api) for _ in range(3)))
    # The others waited for the first to finish, then found nothing idle.
    assert sorted(p["outcome"] for p in payloads) == [
        "FLUSHED",
        "NOTHING_TO_FLUSH",
        "NOTHING_TO_FLUSH",
    ]
    done = [p["flush"] for p in payloads if p["flush"] is not None]
    assert len(done) == 1
    assert done[0]["itemCount"] == 1
    assert llm.purposes().count("summarize") == 1
    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        flushes = (await session.scalars(select(Flush))).all()
    assert [f.status for f in flushes] == ["done"]


async def test_abandoned_flush_is_recovered_and_redone(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    resources: Resources = app.state.resources
    flusher = resources.flusher
    await _user_with_chat(project.api)
    async with resources.sessions() as session:
        item = (await session.scalars(select(BufferItem))).one()
    # A flush claims the items, then its process "dies": nothing renews its lease.
    claimed = await flusher.claim(item.project_id, item.user_id, FlushTrigger.MANUAL)
    assert isinstance(claimed, Claim)
    processing = (await _memory(project.api))["buffer"]
    assert processing["items"][0]["status"] == "PROCESSING"
    assert processing["status"] == "PROCESSING"
    assert processing["idleTokens"] == 0
    assert processing["totalTokens"] == processing["items"][0]["tokenCount"] > 0
    assert await flusher.recover() == 0  # the lease is still live

    async with resources.sessions() as session, session.begin():
        lock = await session.get(FlushLock, item.user_id)
        assert lock is not None
        lock.expires_at = utcnow()  # the lease runs out
    assert await flusher.recover() == 1
    memory = await _memory(project.api)
    assert memory["buffer"]["items"][0]["status"] == "IDLE"
    assert memory["flushes"][0]["status"] == "ABANDONED"

    llm.responder = memory_responder()
    flush = await _flush(project.api)
    assert flush is not None
    assert (flush["status"], flush["itemCount"]) == ("DONE", 1)
    async with resources.sessions() as session:
        statuses = (await session.scalars(select(col(BufferItem.status)))).all()
    assert statuses == ["done"]


async def test_flush_buffer_recovers_a_dead_flush_without_the_scheduler(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    # background_flushes is off in these tests: no scheduler pass will ever run recovery.
    resources: Resources = app.state.resources
    await _user_with_chat(project.api)
    async with resources.sessions() as session:
        item = (await session.scalars(select(BufferItem))).one()
    claimed = await resources.flusher.claim(item.project_id, item.user_id, FlushTrigger.MANUAL)
    assert isinstance(claimed, Claim)
    async with resources.sessions() as session, session.begin():
        lock = await session.get(FlushLock, item.user_id)
        assert lock is not None
        lock.expires_at = utcnow()  # the process holding it died a lease ago

    llm.responder = memory_responder()
    flush = await _flush(project.api)

    assert flush is not None
    assert (flush["status"], flush["itemCount"]) == ("DONE", 1)
    statuses = [f["status"] for f in (await _memory(project.api))["flushes"]]
    assert statuses == ["DONE", "ABANDONED"]


async def test_flush_of_unknown_user_is_user_not_found(project: ProjectHandle) -> None:
    data = await project.api.ok(FLUSH, userId="ghost", wait=True)
    assert data["flushBuffer"] == {"__typename": "NotFound", "code": "NOT_FOUND"}


async def test_empty_buffer_flush_says_nothing_to_flush(project: ProjectHandle) -> None:
    await project.api.ok(CREATE_USER, id="alice")
    assert await _flush_payload(project.api) == {
        "__typename": "FlushBufferPayload",
        "outcome": "NOTHING_TO_FLUSH",
        "flush": None,
    }


async def test_flush_without_wait_is_scheduled(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    payload = await _flush_payload(project.api, wait=False)
    assert (payload["outcome"], payload["flush"]) == ("SCHEDULED", None)
    flush = await _newest_flush_once_done(project.api)
    assert flush["trigger"] == "MANUAL"


async def test_flush_while_another_holds_the_lease_too_long_is_busy(
    llm: ScriptedLLM, database_url: str
) -> None:
    settings = make_settings(
        database_url,
        llm_base_url=llm.base_url,
        flush_lease_seconds=0.5,
        background_flushes=False,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        project = await create_project(app, Api(app, ROOT_TOKEN), "busy")
        await _user_with_chat(project.api)
        resources: Resources = app.state.resources
        async with resources.sessions() as session, session.begin():
            item = (await session.scalars(select(BufferItem))).one()
            # Another instance's flush, renewing its lease well past this request's wait.
            session.add(
                FlushLock(
                    user_id=item.user_id,
                    project_id=item.project_id,
                    flush_id=uuid.uuid4(),
                    expires_at=utcnow() + timedelta(minutes=5),
                )
            )
        payload = await _flush_payload(project.api)
        assert (payload["outcome"], payload["flush"]) == ("BUSY", None)
        assert (await _memory(project.api))["buffer"]["items"][0]["status"] == "IDLE"


@pytest.mark.settings(language="zh")
async def test_chinese_prompts(project: ProjectHandle, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api, "我在里昂教化学。")
    assert (await _flush(project.api) or {}).get("status") == "DONE"
    assert "用户" in llm.requests[0]["body"]["messages"][0]["content"]
    assert "我在里昂教化学。" in llm.requests[0]["body"]["messages"][1]["content"]


INSERT_DOCUMENTS = """
mutation {
  d: insertBlob(input: {userId: "alice", blob: {document: {
    title: "CV", content: "Teaches chemistry."
  }}}) { __typename }
  t: insertBlob(input: {userId: "alice", blob: {transcript: {segments: [
    {speaker: "Alice", text: "I live in Lyon."}
  ]}}}) { __typename }
  c: insertBlob(input: {userId: "alice", blob: {code: {content: "print('not memory')"}}}) {
    __typename
  }
}
"""


async def test_documents_and_transcripts_are_processed_as_text(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    await project.api.ok(CREATE_USER, id="alice")
    await project.api.ok(INSERT_DOCUMENTS)
    flush = await _flush(project.api)
    assert flush is not None
    assert flush["itemCount"] == 2  # code is kept as a blob, not processed
    material = llm.requests[0]["body"]["messages"][1]["content"]
    assert "CV\n\nTeaches chemistry." in material
    assert "Alice: I live in Lyon." in material
    assert "not memory" not in material


async def test_content_is_written_in_english_by_default(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    await _flush(project.api)
    assert "Write every content in English." in llm.requests[0]["body"]["messages"][0]["content"]


@pytest.mark.settings(keep_input_language=True)
async def test_keep_input_language_changes_the_instruction(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    await _flush(project.api)
    await project.api.ok(INSERT_CHAT, userId="alice", text="J'habite à Lyon.")
    await _flush(project.api)
    second_flush = llm.requests[llm.purposes().index("summarize", 1) :]
    assert [r["headers"]["x-powermemo-purpose"] for r in second_flush] == [
        "summarize",
        "extract",
        "merge",
    ]
    # Every step that writes content is told to keep the user's language.
    for request in second_flush:
        system = request["body"]["messages"][0]["content"]
        assert "Write every content in the language the user used." in system


async def test_delete_user_removes_flushes_leases_and_history(
    project: ProjectHandle, llm: ScriptedLLM, app: Starlette
) -> None:
    resources: Resources = app.state.resources
    llm.responder = memory_responder()
    await _user_with_chat(project.api)
    await _flush(project.api)  # a flush row and profile entries
    entries = await project.api.ok('{ user(userId: "alice") { profile { id } } }')
    await project.api.ok(
        'mutation($id: ID!) { updateProfileEntry(input: {id: $id, content: "x"}) { __typename } }',
        id=entries["user"]["profile"][0]["id"],
    )  # a revision
    await project.api.ok(INSERT_CHAT, userId="alice", text="More.")
    async with resources.sessions() as session:
        item = (
            await session.scalars(select(BufferItem).where(col(BufferItem.status) == "idle"))
        ).one()
    assert isinstance(
        await resources.flusher.claim(item.project_id, item.user_id, FlushTrigger.MANUAL), Claim
    )  # a live lease

    async def counts() -> list[int]:
        async with resources.sessions() as session:
            return [
                int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in (Flush, FlushLock, ProfileRevision, BufferItem, ProfileEntry, Event)
            ]

    assert all(n > 0 for n in await counts())
    await project.api.ok('mutation { deleteUser(input: {userId: "alice"}) { __typename } }')
    assert await counts() == [0, 0, 0, 0, 0, 0]
