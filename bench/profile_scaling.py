"""Profile-query latency as the number of users grows (1k, 10k, 100k by default).

Users and their profile entries (10 each) are seeded straight into the migrated schema with
COPY, in steps, in one project. At each size, `user(userId) { profile { topic subTopic content } }`
for random users goes over HTTP to `powermemo-gql serve` (a subprocess on PostgreSQL), one
request at a time by default; the same reads straight through asyncpg give the floor.

    .venv/bin/python bench/profile_scaling.py [--sizes 1000,10000,100000] [--requests 500]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import asyncpg
import common
import httpx

PROFILE = "query Profile($id: ID!) { user(userId: $id) { profile { topic subTopic content } } }"
USER_BY_EXTERNAL_ID = "SELECT id FROM users WHERE project_id = $1 AND external_id = $2"
PROFILE_ENTRIES = "SELECT * FROM profile_entries WHERE user_id = $1 ORDER BY topic, sub_topic, id"
ENTRIES_PER_USER = len(common.SEED_SLOTS)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="user counts, ascending")
    parser.add_argument("--requests", type=int, default=500, help="measured requests per size")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per case, at most")
    parser.add_argument(
        "--seed-budget",
        type=float,
        default=120.0,
        help="stop growing once seeding has taken this many seconds in all",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default=common.DEFAULT_DB)
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rng = random.Random(args.seed)  # noqa: S311  (which users to read, not secrets)
    common.reset_database(args.database)
    print(common.machine_summary(await common.postgres_version(args.database)))
    print(
        f"requests={args.requests} per size, concurrency={args.concurrency}, "
        f"{ENTRIES_PER_USER} entries per user\n"
    )
    rows = []
    with common.running_server(args.database) as server:
        project = await common.create_project(server)
        pool = await asyncpg.create_pool(
            common.dsn(args.database), min_size=args.concurrency, max_size=args.concurrency
        )
        assert pool is not None
        users: list[str] = []
        seeding = 0.0
        try:
            async with common.http_client(args.concurrency) as client:
                headers = {
                    "Authorization": f"Bearer {project.api_key}",
                    "Content-Type": "application/json",
                }
                for size in sizes:
                    if seeding > args.seed_budget:
                        print(f"skipping {size:,} users: seeding passed {args.seed_budget:g} s")
                        break
                    began = time.perf_counter()
                    async with pool.acquire() as conn:
                        users += await common.seed_users(
                            conn, project.id, len(users), size - len(users)
                        )
                        await conn.execute("ANALYZE users")
                        await conn.execute("ANALYZE profile_entries")
                        table_bytes = await conn.fetchval(
                            "SELECT pg_total_relation_size('profile_entries')"
                        )
                    step = time.perf_counter() - began
                    seeding += step
                    print(f"seeded up to {size:,} users in {step:.1f} s")
                    picked = [rng.choice(users) for _ in range(args.requests + args.warmup)]

                    async def server_read(i: int, picked: list[str] = picked) -> None:
                        response = await client.post(
                            server.graphql_url,
                            json={"query": PROFILE, "variables": {"id": picked[i]}},
                            headers=headers,
                        )
                        body = response.json()
                        if response.status_code != 200 or body.get("errors"):
                            raise common.GraphQLFailed(str(body)[:200])
                        if len(body["data"]["user"]["profile"]) != ENTRIES_PER_USER:
                            raise common.GraphQLFailed("wrong profile size")

                    async def floor_read(i: int, picked: list[str] = picked) -> None:
                        async with pool.acquire() as conn:
                            user_id = await conn.fetchval(
                                USER_BY_EXTERNAL_ID, project.id, picked[i]
                            )
                            rows = await conn.fetch(PROFILE_ENTRIES, user_id)
                        if len(rows) != ENTRIES_PER_USER:
                            raise RuntimeError("wrong profile size")

                    measured = {}
                    server_cpu = 0.0
                    for name, operation in (("server", server_read), ("floor", floor_read)):
                        await common.run_load(
                            lambda i, op=operation: op(args.requests + i),
                            args.warmup,
                            args.concurrency,
                            args.time_limit,
                        )
                        pid = server.process.pid if name == "server" else None
                        with common.CpuMeter(pid) as cpu:
                            result = await common.run_load(
                                operation, args.requests, args.concurrency, args.time_limit
                            )
                        server_cpu = server_cpu or cpu.server
                        if result.errors:
                            print(f"  {name}: {result.errors} errors; first {result.first_error}")
                        measured[name] = result
                    server_s = common.Summary.of(measured["server"].latencies)
                    floor_s = common.Summary.of(measured["floor"].latencies)
                    rows.append(
                        [
                            f"{size:,}",
                            f"{size * ENTRIES_PER_USER:,}",
                            f"{table_bytes / 2**20:.0f}",
                            server_s.count,
                            f"{measured['server'].rate:.0f}",
                            common.ms(server_s.p50),
                            common.ms(server_s.p90),
                            common.ms(server_s.p99),
                            common.ms(server_cpu / max(server_s.count, 1)),
                            common.ms(floor_s.p50),
                            common.ms(floor_s.p99),
                            f"{server_s.p50 / floor_s.p50:.1f}x",
                        ]
                    )
        finally:
            await pool.close()
    print()
    common.print_table(
        [
            "users",
            "entries",
            "table MiB",
            "requests",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "server CPU ms/req",
            "floor p50",
            "floor p99",
            "p50 / floor",
        ],
        rows,
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except httpx.ConnectError as exc:
        raise SystemExit(f"could not reach the server: {exc}") from exc
