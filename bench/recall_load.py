"""Loading the recall benchmark's memories through the GraphQL API (bench/recall.py).

Profile entries go in with addProfileEntry (a user's one at a time, users in parallel); an
event (and so its facts) with insertBlob of a chat dated as the event, then flushBuffer(wait:
true), while a scripted LLM answers `summarize` with the event's designed notes and
`extract` with no facts, so the profile holds exactly the designed entries. The API has no
bulk path.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import common

from bench.recall_data import BulkEvent, RecallSet, bulk_memories
from tests.llm_server import Reply, json_reply

CREATE_USER = """
mutation($id: ID!) { createUser(input: {userId: $id}) { __typename ... on Error { code message } } }
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
  flushBuffer(input: {userId: $userId, wait: true}) {
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


async def add_entries(call: Call, user: str, entries: Sequence[tuple[str, str, str]]) -> None:
    """One at a time: concurrent addProfileEntry calls for one user deadlock on PostgreSQL
    (the change feed's user-row lock; seen while writing this benchmark)."""
    for topic, sub_topic, content in entries:
        entry = {"userId": user, "topic": topic, "subTopic": sub_topic, "content": content}
        ok((await call(ADD_ENTRY, input=entry))["addProfileEntry"], "AddProfileEntryPayload")


async def load_set(
    call: Call, notes: ScriptedNotes, recall_set: RecallSet, concurrency: int
) -> None:
    """Every user of the set, `concurrency` users at a time."""
    began = time.perf_counter()
    slots = asyncio.Semaphore(concurrency)

    async def load_user(external_id: str) -> None:
        async with slots:
            ok((await call(CREATE_USER, id=external_id))["createUser"], "CreateUserPayload")
            memories = recall_set.of_user(external_id)
            profile = [(m.topic, m.sub_topic, m.content) for m in memories if m.kind == "profile"]
            await add_entries(call, external_id, profile)
            for event in (m for m in memories if m.kind == "event"):
                assert event.happened_from is not None
                assert event.happened_to is not None
                await flush_event(
                    call,
                    notes,
                    external_id,
                    event.id,
                    event.content,
                    event.happened_from,
                    event.happened_to,
                )

    await asyncio.gather(*(load_user(u.external_id) for u in recall_set.users))
    print(f"set loaded through the API in {time.perf_counter() - began:.1f} s")


BulkInsert = Callable[[str, Sequence[tuple[str, str, str]]], Awaitable[None]]


async def load_bulk(
    call: Call, notes: ScriptedNotes, user: str, size: int, seed: int, bulk: BulkInsert | None
) -> None:
    """The latency user: events through flushes, then profile entries by the API, or
    written straight into the database by `bulk`."""
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
    if bulk is None:
        await add_entries(call, user, entries)
    else:
        await bulk(user, entries)
    print(
        f"\n{user}: {len(entries)} profile entries ({'bulk' if bulk else 'API'}) and "
        f"{len(events)} events of "
        f"{len(events[0].notes) if events else 0} facts loaded in "
        f"{time.perf_counter() - began:.1f} s"
    )


def summary_of(event: BulkEvent) -> str:
    return "\n".join(f"- {note} [said {event.day.date().isoformat()}]" for note in event.notes)


# --bulk: the latency users' profile entries written straight into the database (no API),
# as the indexer finds them: embedded_model NULL, picked up by its loop.

ENTRY_COLUMNS = (
    "id", "project_id", "user_id", "topic", "sub_topic", "content", "source",
    "source_blob_ids", "created_at", "updated_at",
)  # fmt: skip


async def insert_entries_postgres(
    database: str, external_id: str, entries: Sequence[tuple[str, str, str]]
) -> None:
    conn = await asyncpg.connect(common.dsn(database))
    try:
        user = await conn.fetchrow(
            "SELECT id, project_id FROM users WHERE external_id = $1", external_id
        )
        now = datetime.now(UTC)
        records = [
            (uuid.uuid4(), user["project_id"], user["id"], *entry, "manual", "[]", now, now)
            for entry in entries
        ]
        await conn.copy_records_to_table(
            "profile_entries", records=records, columns=list(ENTRY_COLUMNS)
        )
    finally:
        await conn.close()


def insert_entries_sqlite(
    path: Path, external_id: str, entries: Sequence[tuple[str, str, str]]
) -> None:
    """Rows as SQLAlchemy stores them on SQLite: uuids as 32 hex digits, naive UTC times."""
    with sqlite3.connect(path, timeout=30) as conn:
        user_id, project_id = conn.execute(
            "SELECT id, project_id FROM users WHERE external_id = ?", (external_id,)
        ).fetchone()
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        conn.executemany(
            f"INSERT INTO profile_entries ({', '.join(ENTRY_COLUMNS)}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (uuid.uuid4().hex, project_id, user_id, *entry, "manual", "[]", now, now)
                for entry in entries
            ],
        )
