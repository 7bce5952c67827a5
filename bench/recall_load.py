"""Loading the recall benchmark's memories through the GraphQL API (bench/recall.py).

Profile entries go in with addProfileEntry on concurrent clients; an event (and so its
facts) with insertBlob of a chat dated as the event, then flushBuffer(wait: true), while a
scripted LLM answers `summarize` with the event's designed notes and `extract` with no
facts, so the profile holds exactly the designed entries. The API has no bulk path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import common

from bench.recall_data import BulkEvent, RecallSet, bulk_memories
from tests.llm_server import Reply, json_reply

CREATE_USER = """
mutation($id: ID!) { createUser(input: {id: $id}) { __typename ... on Error { code message } } }
"""
ADD_ENTRY = """
mutation($input: AddProfileEntryInput!) {
  addProfileEntry(input: $input) { __typename ... on Error { code message } }
}
"""
INSERT = """
mutation($input: InsertBlobInput!) {
  insertBlob(input: $input) { __typename ... on Error { code message } }
}
"""
FLUSH = """
mutation($userId: ID!) {
  flushBuffer(userId: $userId, wait: true) {
    __typename ... on FlushBufferPayload { flush { status error } } ... on Error { code message }
  }
}
"""
MARKER = re.compile(r"\(recall event ([\w.-]+)\)")


class ScriptedNotes:
    """The LLM of the run: `summarize` answers the designed notes of the event whose marker
    the chat carries, `extract` no facts; anything else is an error (HTTP 500)."""

    def __init__(self) -> None:
        self.summaries: dict[str, str] = {}

    def __call__(self, request: dict[str, Any]) -> Reply:
        purpose = request["headers"].get("x-powermemo-purpose", "")
        text = "".join(m["content"] for m in request["body"]["messages"])
        if purpose == "summarize":
            found = MARKER.search(text)
            if found and found.group(1) in self.summaries:
                return json_reply({"summary": self.summaries[found.group(1)]})
            return Reply(status=500, content="summarize without a known event marker")
        if purpose == "extract":
            return json_reply({"facts": []})
        if purpose == "tag_event":
            return json_reply({"tags": []})
        return Reply(status=500, content=f"unscripted purpose {purpose!r}")


Call = Callable[..., Awaitable[dict[str, Any]]]


def ok(result: dict[str, Any], typename: str) -> None:
    if result["__typename"] != typename:
        raise common.GraphQLFailed(str(result))


async def flush_event(
    call: Call,
    notes: ScriptedNotes,
    user: str,
    key: str,
    summary: str,
    start: datetime,
    end: datetime,
) -> None:
    """One event through the pipeline: a chat dated start..end, flushed at once."""
    notes.summaries[key] = summary
    messages = [
        {
            "role": "USER",
            "content": f"(recall event {key}) Here is what happened.",
            "createdAt": start.isoformat(),
        },
        {"role": "ASSISTANT", "content": "Thanks for telling me.", "createdAt": end.isoformat()},
    ]
    blob = {"chat": {"messages": messages}}
    ok(
        (await call(INSERT, input={"userId": user, "blob": blob}))["insertBlob"],
        "InsertBlobPayload",
    )
    flushed = (await call(FLUSH, userId=user))["flushBuffer"]
    ok(flushed, "FlushBufferPayload")
    if flushed["flush"]["status"] != "DONE":
        raise common.GraphQLFailed(f"flush of {key}: {flushed['flush']}")


async def add_entries(
    call: Call, user: str, entries: Sequence[tuple[str, str, str]], concurrency: int
) -> None:
    async def add(index: int) -> None:
        topic, sub_topic, content = entries[index]
        entry = {"userId": user, "topic": topic, "subTopic": sub_topic, "content": content}
        ok((await call(ADD_ENTRY, input=entry))["addProfileEntry"], "AddProfileEntryPayload")

    result = await common.run_load(add, len(entries), concurrency, time_limit=3600)
    if result.errors or result.stopped_by_time:
        raise common.GraphQLFailed(f"{result.errors} entries not added: {result.first_error}")


async def load_set(
    call: Call, notes: ScriptedNotes, recall_set: RecallSet, concurrency: int
) -> None:
    began = time.perf_counter()
    for user in recall_set.users:
        ok((await call(CREATE_USER, id=user.external_id))["createUser"], "CreateUserPayload")
        memories = recall_set.of_user(user.external_id)
        profile = [(m.topic, m.sub_topic, m.content) for m in memories if m.kind == "profile"]
        await add_entries(call, user.external_id, profile, concurrency)
        for event in (m for m in memories if m.kind == "event"):
            assert event.happened_from is not None
            assert event.happened_to is not None
            await flush_event(
                call,
                notes,
                user.external_id,
                event.id,
                event.content,
                event.happened_from,
                event.happened_to,
            )
    print(f"set loaded through the API in {time.perf_counter() - began:.1f} s")


async def load_bulk(
    call: Call, notes: ScriptedNotes, user: str, size: int, concurrency: int, seed: int
) -> None:
    began = time.perf_counter()
    entries, events = bulk_memories(size, seed=seed + size)
    ok((await call(CREATE_USER, id=user))["createUser"], "CreateUserPayload")
    # Events first: a flush reads the whole profile, which is small then.
    for number, event in enumerate(events):
        await flush_event(
            call,
            notes,
            user,
            f"{user}-e{number}",
            summary_of(event),
            event.day.replace(hour=9),
            event.day.replace(hour=9, minute=30),
        )
    await add_entries(call, user, entries, concurrency)
    print(
        f"\n{user}: {len(entries)} profile entries and {len(events)} events of "
        f"{len(events[0].notes) if events else 0} facts loaded in "
        f"{time.perf_counter() - began:.1f} s"
    )


def summary_of(event: BulkEvent) -> str:
    return "\n".join(f"- {note} [said {event.day.date().isoformat()}]" for note in event.notes)
