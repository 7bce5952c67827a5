"""insertBlob and the profile query over HTTP on one uvicorn worker, against a raw asyncpg floor.

The server is `powermemo-gql serve` (a subprocess) on PostgreSQL, production mode, no rate
limit, no background flushes. N closed-loop clients (default 8) send a fixed number of
requests. The floor does the same database work straight through asyncpg with the same
concurrency:

- insert: in one transaction, look the user up by (project, external id), insert the blob
  row and its buffer item;
- profile: look the user up, then select their profile entries (as the server does).

Reported: requests/s, server/floor ratio, p50/p90/p99 latency, and PostgreSQL transactions
committed per request (pg_stat_database, approximate).

    .venv/bin/python bench/insert_and_read.py [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import common
import httpx

INSERT = """
mutation Insert($input: InsertBlobInput!) {
  insertBlob(input: $input) {
    __typename
    ... on InsertBlobPayload { blob { id } }
    ... on Error { code message }
  }
}
"""
PROFILE = "query Profile($id: ID!) { user(userId: $id) { profile { topic subTopic content } } }"

USER_BY_EXTERNAL_ID = "SELECT id FROM users WHERE project_id = $1 AND external_id = $2"
INSERT_BLOB = (
    "INSERT INTO blobs (id, project_id, user_id, type, payload, fields, created_at) "
    "VALUES ($1, $2, $3, 'chat', $4, '{}', $5)"
)
INSERT_BUFFER_ITEM = (
    "INSERT INTO buffer_items (id, project_id, user_id, blob_id, blob_type, token_count, "
    "status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'chat', $5, 'idle', $6, $6)"
)
PROFILE_ENTRIES = "SELECT * FROM profile_entries WHERE user_id = $1 ORDER BY topic, sub_topic, id"


def chat_messages(index: int) -> list[dict[str, str]]:
    return [
        {
            "role": "USER",
            "content": f"Message {index}: I moved to Lyon last year and I teach chemistry there.",
        },
        {
            "role": "ASSISTANT",
            "content": "That sounds great! How do you like teaching in Lyon so far?",
        },
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per case")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests first")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--users", type=int, default=200, help="users, ~10 profile entries each")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per case, at most")
    parser.add_argument(
        "--count-transactions",
        action="store_true",
        help="also report PostgreSQL transactions per request (adds ~11 s per case)",
    )
    parser.add_argument("--database", default=common.DEFAULT_DB)
    return parser.parse_args()


Operation = Callable[[int], Awaitable[None]]


@dataclass
class Case:
    result: common.LoadResult
    cpu: common.CpuMeter
    transactions_per_request: float

    def per_request(self, seconds: float) -> float:
        done = len(self.result.latencies) + self.result.errors
        return seconds / done if done else float("nan")


class Measurer:
    """Warms each case up, then measures it: latency, throughput, CPU of the server and of
    this client process; with --count-transactions also the PostgreSQL transactions
    committed per request (pg_stat_database, read ~11 s after each case)."""

    def __init__(self, args: argparse.Namespace, server_pid: int) -> None:
        self.args = args
        self.server_pid = server_pid
        self.last_count: int | None = None

    async def warm_up(self, operation: Operation) -> None:
        args = self.args
        await common.run_load(operation, args.warmup, args.concurrency, args.time_limit)
        self.last_count = None  # the warm-ups are not counted

    async def measure(self, name: str, operation: Operation, through_server: bool) -> Case:
        args = self.args
        if args.count_transactions and self.last_count is None:
            self.last_count = await common.committed_transactions(args.database)
        with common.CpuMeter(self.server_pid if through_server else None) as cpu:
            result = await common.run_load(
                operation, args.requests, args.concurrency, args.time_limit
            )
        case = Case(result, cpu, float("nan"))
        if args.count_transactions and self.last_count is not None:
            count = await common.committed_transactions(args.database)
            # The previous statistics read committed one transaction of its own.
            case.transactions_per_request = case.per_request(count - self.last_count - 1)
            self.last_count = count
        if result.errors:
            print(f"  {name}: {result.errors} errors, first: {result.first_error}")
        if result.stopped_by_time:
            print(f"  {name}: stopped at the {args.time_limit:g} s limit")
        print(f"  {name}: {result.rate:.0f} req/s")
        return case


async def main() -> None:
    args = parse_args()
    common.reset_database(args.database)
    pg_version = await common.postgres_version(args.database)
    print(common.machine_summary(pg_version))
    print(
        f"requests={args.requests} warmup={args.warmup} concurrency={args.concurrency} "
        f"users={args.users}\n"
    )
    results: dict[str, Case] = {}
    with common.running_server(args.database) as server:
        measurer = Measurer(args, server.process.pid)
        project = await common.create_project(server)
        pool = await asyncpg.create_pool(
            common.dsn(args.database), min_size=args.concurrency, max_size=args.concurrency
        )
        assert pool is not None
        try:
            async with pool.acquire() as conn:
                users = await common.seed_users(conn, project.id, 0, args.users)
                await conn.execute("ANALYZE")
            expected_entries = len(common.SEED_SLOTS)

            async with common.http_client(args.concurrency) as client:
                headers = {
                    "Authorization": f"Bearer {project.api_key}",
                    "Content-Type": "application/json",
                }

                async def post(body: dict[str, object]) -> dict[str, object]:
                    response = await client.post(
                        server.graphql_url, content=json.dumps(body), headers=headers
                    )
                    if response.status_code != 200:
                        raise common.GraphQLFailed(f"HTTP {response.status_code}")
                    payload: dict[str, object] = response.json()
                    if payload.get("errors"):
                        raise common.GraphQLFailed(str(payload["errors"])[:200])
                    return payload

                async def server_insert(i: int) -> None:
                    variables = {
                        "input": {
                            "userId": users[i % len(users)],
                            "blob": {"chat": {"messages": chat_messages(i)}},
                        }
                    }
                    body = await post({"query": INSERT, "variables": variables})
                    data = body["data"]
                    assert isinstance(data, dict)
                    typename = data["insertBlob"]["__typename"]
                    if typename != "InsertBlobPayload":
                        raise common.GraphQLFailed(str(data))

                async def server_profile(i: int) -> None:
                    body = await post(
                        {"query": PROFILE, "variables": {"id": users[(i * 7919) % len(users)]}}
                    )
                    data = body["data"]
                    assert isinstance(data, dict)
                    if len(data["user"]["profile"]) != expected_entries:
                        raise common.GraphQLFailed("wrong profile size")

                await measurer.warm_up(server_insert)
                await measurer.warm_up(server_profile)
                results["insertBlob: server"] = await measurer.measure(
                    "insert server", server_insert, through_server=True
                )
                results["profile: server"] = await measurer.measure(
                    "profile server", server_profile, through_server=True
                )

            async def floor_insert(i: int) -> None:
                payload = json.dumps(
                    {"messages": [{**m, "role": m["role"].lower()} for m in chat_messages(i)]}
                )
                now = datetime.now(UTC)
                async with pool.acquire() as conn, conn.transaction():
                    user_id = await conn.fetchval(
                        USER_BY_EXTERNAL_ID, project.id, users[i % len(users)]
                    )
                    blob_id = uuid.uuid4()
                    await conn.execute(INSERT_BLOB, blob_id, project.id, user_id, payload, now)
                    await conn.execute(
                        INSERT_BUFFER_ITEM,
                        uuid.uuid4(),
                        project.id,
                        user_id,
                        blob_id,
                        len(payload) // 4,
                        now,
                    )

            async def floor_profile(i: int) -> None:
                async with pool.acquire() as conn:
                    user_id = await conn.fetchval(
                        USER_BY_EXTERNAL_ID, project.id, users[(i * 7919) % len(users)]
                    )
                    rows = await conn.fetch(PROFILE_ENTRIES, user_id)
                if len(rows) != expected_entries:
                    raise RuntimeError("wrong profile size")

            await measurer.warm_up(floor_insert)
            await measurer.warm_up(floor_profile)
            results["insertBlob: floor"] = await measurer.measure(
                "insert floor", floor_insert, through_server=False
            )
            results["profile: floor"] = await measurer.measure(
                "profile floor", floor_profile, through_server=False
            )
        finally:
            await pool.close()

    print()
    print_results(results, args.count_transactions)


def print_results(results: dict[str, Case], count_transactions: bool) -> None:
    rows = []
    for operation in ("insertBlob", "profile"):
        server = results[f"{operation}: server"]
        floor = results[f"{operation}: floor"]
        for side, case in (("server (HTTP)", server), ("floor (asyncpg)", floor)):
            s = common.Summary.of(case.result.latencies)
            through_server = case is server
            rows.append(
                [
                    operation,
                    side,
                    len(case.result.latencies),
                    case.result.errors,
                    f"{case.result.rate:.0f}",
                    common.ms(s.p50),
                    common.ms(s.p90),
                    common.ms(s.p99),
                    common.ms(case.per_request(case.cpu.server)) if through_server else "-",
                    common.ms(case.per_request(case.cpu.client)),
                    *([f"{case.transactions_per_request:.1f}"] if count_transactions else []),
                ]
            )
        rows.append(
            [
                operation,
                "server / floor",
                "",
                "",
                f"{server.result.rate / floor.result.rate:.2f}x",
                f"{_ratio(server.result, floor.result, 50):.1f}x",
                f"{_ratio(server.result, floor.result, 90):.1f}x",
                f"{_ratio(server.result, floor.result, 99):.1f}x",
                "",
                "",
                *([""] if count_transactions else []),
            ]
        )
    common.print_table(
        [
            "operation",
            "side",
            "ok",
            "errors",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "server CPU ms/req",
            "client CPU ms/req",
        ]
        + (["xacts/req"] if count_transactions else []),
        rows,
    )


def _ratio(a: common.LoadResult, b: common.LoadResult, q: float) -> float:
    return common.percentile(sorted(a.latencies), q) / common.percentile(sorted(b.latencies), q)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except httpx.ConnectError as exc:
        raise SystemExit(f"could not reach the server: {exc}") from exc
