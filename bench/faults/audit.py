"""The drill's audit: what the database holds against what the clients were told.

Each check is a row (name, expected, found, ok); the drill exits non-zero if any fails.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True)
class Check:
    name: str
    expected: str
    found: str
    ok: bool


@dataclass
class ClientRecord:
    """What the drill's clients saw: inserts acknowledged (key -> blob id) or not, and per
    followed user the feed ids its subscriber received after its starting id."""

    acked: dict[str, str] = field(default_factory=dict)
    unacked: set[str] = field(default_factory=set)
    received: dict[str, list[int]] = field(default_factory=dict)  # external user id -> ids
    start_ids: dict[str, int] = field(default_factory=dict)


def change_id(cursor: str) -> int:
    """The change's number in its user's feed (changes.seq), from a profileUpdated cursor
    (base64 of [tag, seq, seq])."""
    raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
    return int(json.loads(raw)[1])


async def item_states(dsn: str) -> Counter[str]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM buffer_items GROUP BY status")
    finally:
        await conn.close()
    return Counter({r["status"]: int(r["n"]) for r in rows})


async def flush_states(dsn: str) -> Counter[str]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM flushes GROUP BY status")
    finally:
        await conn.close()
    return Counter({r["status"]: int(r["n"]) for r in rows})


async def latest_change_ids(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT u.external_id, max(c.seq) AS last FROM changes c "
            "JOIN users u ON u.id = c.user_id GROUP BY u.external_id"
        )
    finally:
        await conn.close()
    return {r["external_id"]: int(r["last"]) for r in rows}


async def audit(dsn: str, record: ClientRecord) -> list[Check]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return [
            *await _inserts(conn, record),
            *await _items(conn),
            *await _events(conn),
            *await _subscribers(conn, record),
        ]
    finally:
        await conn.close()


async def _inserts(conn: asyncpg.Connection, record: ClientRecord) -> list[Check]:
    rows = await conn.fetch(
        "SELECT fields->>'drill_key' AS key, count(*) AS n, min(id::text) AS id FROM blobs "
        "GROUP BY 1"
    )
    stored = {r["key"]: (int(r["n"]), r["id"]) for r in rows}
    missing = [k for k in record.acked if k not in stored]
    doubled = [k for k in record.acked if stored.get(k, (0, ""))[0] > 1]
    wrong_id = [k for k, i in record.acked.items() if k in stored and stored[k][1] != i]
    unacked_stored = sum(1 for k in record.unacked if k in stored)
    unacked_doubled = sum(1 for k in record.unacked if stored.get(k, (0, ""))[0] > 1)
    n = len(record.acked)
    return [
        Check(
            "acknowledged inserts stored exactly once (by key)",
            f"{n} x1",
            f"{n - len(missing) - len(doubled)} x1, {len(missing)} missing, {len(doubled)} doubled",
            not missing and not doubled,
        ),
        Check(
            "acknowledged blob ids match the stored ones",
            "0 differ",
            f"{len(wrong_id)} differ",
            not wrong_id,
        ),
        Check(
            "unacknowledged inserts stored at most once",
            f"<= {len(record.unacked)} x1",
            f"{unacked_stored} stored, {unacked_doubled} doubled",
            unacked_doubled == 0,
        ),
    ]


async def _items(conn: asyncpg.Connection) -> list[Check]:
    states = {
        r["status"]: int(r["n"])
        for r in await conn.fetch("SELECT status, count(*) AS n FROM buffer_items GROUP BY 1")
    }
    blobs = int(await conn.fetchval("SELECT count(*) FROM blobs"))
    not_done = {k: v for k, v in states.items() if k != "done"}
    done = states.get("done", 0)
    # An item done twice would be counted by two DONE flushes but point at only one.
    counted = int(
        await conn.fetchval("SELECT coalesce(sum(item_count), 0) FROM flushes WHERE status='done'")
    )
    mismatched = int(
        await conn.fetchval(
            "SELECT count(*) FROM flushes f WHERE f.status = 'done' AND f.item_count <> "
            "(SELECT count(*) FROM buffer_items b WHERE b.flush_id = f.id)"
        )
    )
    running = int(await conn.fetchval("SELECT count(*) FROM flushes WHERE status = 'running'"))
    return [
        Check(
            "every stored blob has one buffer item",
            f"{blobs}",
            f"{sum(states.values())}",
            sum(states.values()) == blobs,
        ),
        Check(
            "no item stuck (processing, idle or failed) after recovery",
            "0",
            json.dumps(not_done) if not_done else "0",
            not not_done,
        ),
        Check(
            "no item done twice: items counted by DONE flushes = done items",
            f"{done}",
            f"{counted} ({mismatched} flushes disagree)",
            counted == done and mismatched == 0,
        ),
        Check("no flush left RUNNING", "0", f"{running}", running == 0),
    ]


async def _events(conn: asyncpg.Connection) -> list[Check]:
    done = int(await conn.fetchval("SELECT count(*) FROM flushes WHERE status = 'done'"))
    events = int(await conn.fetchval("SELECT count(*) FROM events"))
    linked = int(
        await conn.fetchval(
            "SELECT count(DISTINCT f.event_id) FROM flushes f JOIN events e ON e.id = f.event_id "
            "WHERE f.status = 'done'"
        )
    )
    flushed = int(await conn.fetchval("SELECT count(*) FROM changes WHERE kind = 'buffer_flushed'"))
    return [
        Check(
            "events = successful flushes (DONE)",
            f"{done}",
            f"{events} events, {linked} linked to a DONE flush",
            events == done == linked,
        ),
        Check(
            "BUFFER_FLUSHED changes = successful flushes", f"{done}", f"{flushed}", flushed == done
        ),
    ]


async def _subscribers(conn: asyncpg.Connection, record: ClientRecord) -> list[Check]:
    checks = []
    for user, start in sorted(record.start_ids.items()):
        rows = await conn.fetch(
            "SELECT c.seq FROM changes c JOIN users u ON u.id = c.user_id "
            "WHERE u.external_id = $1 AND c.seq > $2 ORDER BY c.seq",
            user,
            start,
        )
        feed = [int(r["seq"]) for r in rows]
        got = record.received.get(user, [])
        missing = sorted(set(feed) - set(got))
        repeated = len(got) - len(set(got))
        in_order = got == sorted(got)
        checks.append(
            Check(
                f"subscriber of {user} got every change, in order, once",
                f"{len(feed)}",
                f"{len(set(got) & set(feed))} ({len(missing)} missing, {repeated} repeated"
                f"{'' if in_order else ', out of order'})",
                not missing and repeated == 0 and in_order,
            )
        )
    return checks


async def audit_can_fail(dsn: str, record: ClientRecord) -> Check:
    """The audit run on a forged record (an acknowledged insert never stored, a change a
    subscriber never got, one it got twice) must fail exactly the checks those break."""
    forged = ClientRecord(
        acked={**record.acked, "forged-key": "00000000-0000-0000-0000-000000000000"},
        unacked=set(record.unacked),
        received={user: list(ids) for user, ids in record.received.items()},
        start_ids=dict(record.start_ids),
    )
    users = [u for u, ids in forged.received.items() if len(ids) >= 2]
    if len(users) >= 2:
        forged.received[users[0]].pop()  # one change never received
        forged.received[users[1]].append(forged.received[users[1]][-1])  # one received twice
    failed = [c.name for c in await audit(dsn, forged) if not c.ok]
    wanted = {
        "acknowledged inserts stored exactly once (by key)",
        *(f"subscriber of {u} got every change, in order, once" for u in users[:2]),
    }
    return Check(
        "the audit fails on a forged record (self-test)",
        f"{len(wanted)} checks fail",
        f"{len(failed)} fail",
        set(failed) == wanted and len(users) >= 2,
    )
