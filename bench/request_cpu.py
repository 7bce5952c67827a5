"""Server CPU per request, measured in process: steady on a busy machine.

The real app (`create_app`) runs in this process behind `httpx.ASGITransport`; requests go one
at a time and each one's `time.process_time()` delta is recorded: the CPU of the whole process
(app, transport, asyncpg or aiosqlite client side; not PostgreSQL's own). Other load on the
machine changes wall time, not this process's CPU, so the figures hold on a noisy machine.

Cases, each through the same transport:

- transport: a no-op ASGI app answering a fixed JSON body (what httpx + ASGITransport cost);
- floor: a minimal strawberry + starlette app (no database) answering the profile document
  with ten static entries, with strawberry's ParserCache and ValidationCache as the real
  schema caches parsing and validation (what the framework costs); the ratios are to it;
- floor, uncached: the same app without the two caches (strawberry's default);
- insertBlob: the mutation of bench/insert_and_read.py (a two-message chat) for seeded users;
- profile: `user(userId) { profile { topic subTopic content } }` for seeded users.

Warm-up first, then `gc.freeze()` as `powermemo-gql serve` does, then R rounds; in every round
each case sends N requests (cases interleaved, so a change of load hits them all alike).
Background flushes are off and the LLM base URL is a dead loopback port: nothing else runs.

    .venv/bin/python bench/request_cpu.py [--rounds 5] [--requests 500] [--sqlite] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import common
import httpx
import strawberry
from asgi_lifespan import LifespanManager
from insert_and_read import INSERT, PROFILE, chat_messages
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache

from powermemo_gql.app import create_app
from powermemo_gql.settings.loading import load_settings

BASE_URL = "http://testserver"
CREATE_USER = """
mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }
"""
ADD_ENTRY = """
mutation($input: AddProfileEntryInput!) { addProfileEntry(input: $input) { __typename } }
"""


# The two apps without a database


async def noop_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, answers a fixed small JSON document: the transport's own cost."""
    assert scope["type"] == "http"
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"data":{"ok":true}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@strawberry.type
class FloorEntry:
    topic: str
    sub_topic: str
    content: str


FLOOR_ENTRIES = [
    FloorEntry(topic=topic, sub_topic=sub, content=common.seed_content(0, slot))
    for slot, (topic, sub) in enumerate(common.SEED_SLOTS)
]


@strawberry.type
class FloorUser:
    @strawberry.field
    def profile(self) -> list[FloorEntry]:
        return FLOOR_ENTRIES


@strawberry.type
class FloorQuery:
    @strawberry.field
    def user(self, user_id: strawberry.ID) -> FloorUser:
        return FloorUser()


def floor_app(cached: bool = True) -> Starlette:
    """Cached: parsed documents and validation verdicts kept, as the real schema keeps them."""
    # Factories, as in graphql/schema.py: strawberry's LRU caches live module-wide.
    extensions: list[Callable[[], SchemaExtension]] = (
        [lambda: ParserCache(maxsize=100), lambda: ValidationCache(maxsize=100)] if cached else []
    )
    schema = strawberry.Schema(query=FloorQuery, extensions=extensions)
    return Starlette(routes=[Route("/graphql", GraphQL(schema, graphql_ide=None))])


# The real app and its data


@asynccontextmanager
async def real_app(args: argparse.Namespace) -> AsyncIterator[Starlette]:
    root_token = secrets.token_urlsafe(24)
    if args.sqlite:
        tmp = tempfile.TemporaryDirectory(prefix="powermemo-cpu-")
        database_url = f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
    else:
        common.reset_database(args.database)
        database_url = common.sqlalchemy_url(args.database)
    for name in [k for k in os.environ if k.startswith("POWERMEMO_")]:
        del os.environ[name]  # as bench/common.py does for its server: config.yaml and ours
    config = common.REPO / "config.yaml"
    settings = load_settings(
        config if config.is_file() else None,
        mode="production",
        root_token=root_token,
        database_url=database_url,
        redis_url=None,
        migrate_on_startup=bool(args.sqlite),
        rate_limit_per_minute=0,
        background_flushes=False,
        max_buffer_tokens=1_000_000,  # no size trigger, no idle flush either
        buffer_flush_interval=10**9,
        log_level="WARNING",
        database_pool_size=10,
        # Nothing listens on port 9: the LLM and embeddings are never reached.
        llm_base_url="http://127.0.0.1:9/v1",
        llm_max_retries=0,
        embedding_provider="none",
    )
    app = create_app(settings)
    app.state.bench_root_token = root_token
    try:
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
            yield app
    finally:
        if args.sqlite:
            tmp.cleanup()


async def seed(app: Starlette, args: argparse.Namespace) -> tuple[str, list[str]]:
    """A project, its API key and `args.users` users with ten profile entries each."""
    async with client_for(app) as client:
        url = f"{BASE_URL}/graphql"
        project = await common.create_project_via(client, url, app.state.bench_root_token)
        if not args.sqlite:
            conn = await asyncpg.connect(common.dsn(args.database))
            try:
                users = await common.seed_users(conn, project.id, 0, args.users)
                await conn.execute("ANALYZE")
            finally:
                await conn.close()
            return project.api_key, users
        users = [f"user-{i}" for i in range(args.users)]
        for index, user in enumerate(users):  # no COPY on SQLite: through the API
            await common.graphql(client, url, project.api_key, CREATE_USER, id=user)
            for slot, (topic, sub) in enumerate(common.SEED_SLOTS):
                entry = {
                    "userId": user,
                    "topic": topic,
                    "subTopic": sub,
                    "content": common.seed_content(index, slot),
                }
                await common.graphql(client, url, project.api_key, ADD_ENTRY, input=entry)
        return project.api_key, users


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=30)


# Measuring


Request = Callable[[int], Awaitable[None]]


def request_for(
    client: httpx.AsyncClient, token: str, document: str, variables: Callable[[int], Any]
) -> Request:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def send(i: int) -> None:
        body = json.dumps({"query": document, "variables": variables(i)})
        response = await client.post("/graphql", content=body, headers=headers)
        if response.status_code != 200:
            raise common.GraphQLFailed(f"HTTP {response.status_code}: {response.text[:300]}")
        payload = response.json()
        if payload.get("errors"):
            raise common.GraphQLFailed(json.dumps(payload["errors"])[:300])

    return send


@dataclass
class CaseResult:
    cpu: list[float] = field(default_factory=list)  # seconds, every measured request
    wall: list[float] = field(default_factory=list)
    round_means: list[float] = field(default_factory=list)  # CPU seconds per request


@dataclass
class RoundLoad:
    before: float
    after: float


async def run_round(request: Request, first: int, count: int, result: CaseResult) -> None:
    cpu: list[float] = []
    process_time, perf_counter = time.process_time, time.perf_counter
    for i in range(first, first + count):
        c0, w0 = process_time(), perf_counter()
        await request(i)
        w1, c1 = perf_counter(), process_time()
        cpu.append(c1 - c0)
        result.wall.append(w1 - w0)
    result.cpu.extend(cpu)
    result.round_means.append(sum(cpu) / len(cpu))


async def measure(
    requests: dict[str, Request], args: argparse.Namespace
) -> tuple[dict[str, CaseResult], list[RoundLoad]]:
    for name, request in requests.items():
        for i in range(args.warmup):
            await request(i)
        print(f"  warmed up: {name}", flush=True)
    gc.collect()
    gc.freeze()  # as `powermemo-gql serve` does once start-up is done
    results = {name: CaseResult() for name in requests}
    loads: list[RoundLoad] = []
    for r in range(args.rounds):
        before = os.getloadavg()[0]
        for name, request in requests.items():
            first = args.warmup + r * args.requests
            await run_round(request, first, args.requests, results[name])
        loads.append(RoundLoad(before, os.getloadavg()[0]))
        means = " ".join(f"{n}={common.ms(results[n].round_means[-1])}" for n in requests)
        print(f"  round {r + 1}: load1 {before:.2f} -> {loads[-1].after:.2f}; ms {means}")
    return results, loads


def report(results: dict[str, CaseResult], loads: list[RoundLoad]) -> list[dict[str, Any]]:
    transport = sum(results["transport"].cpu) / len(results["transport"].cpu)
    floor = sum(results["floor"].cpu) / len(results["floor"].cpu)
    rows: list[list[object]] = []
    data: list[dict[str, Any]] = []
    for name, result in results.items():
        cpu, wall = common.Summary.of(result.cpu), common.Summary.of(result.wall)
        low, high = min(result.round_means), max(result.round_means)
        net = cpu.mean - transport
        ratio = cpu.mean / floor
        rows.append(
            [
                name,
                cpu.count,
                common.ms(cpu.p50),
                common.ms(cpu.p90),
                common.ms(cpu.p99),
                common.ms(cpu.mean),
                f"{common.ms(low)}-{common.ms(high)}",
                common.ms(net) if name != "transport" else "-",
                f"{ratio:.2f}x",
                common.ms(wall.p50),
                common.ms(wall.mean),
            ]
        )
        data.append(
            {
                "case": name,
                "cpu_ms": {k: v * 1000 for k, v in asdict(cpu).items() if k != "count"},
                "wall_ms": {k: v * 1000 for k, v in asdict(wall).items() if k != "count"},
                "round_mean_cpu_ms": [m * 1000 for m in result.round_means],
                "net_of_transport_ms": net * 1000,
                "ratio_to_floor": ratio,
                "requests": cpu.count,
            }
        )
    common.print_table(
        [
            "case",
            "requests",
            "CPU p50 ms",
            "CPU p90 ms",
            "CPU p99 ms",
            "CPU mean ms",
            "round means ms",
            "mean net of transport",
            "x floor",
            "wall p50 ms",
            "wall mean ms",
        ],
        rows,
    )
    common.print_table(
        ["round", "load1 before", "load1 after"],
        [[i + 1, f"{x.before:.2f}", f"{x.after:.2f}"] for i, x in enumerate(loads)],
    )
    return data


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds")
    parser.add_argument("--requests", type=int, default=500, help="requests per case per round")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per case")
    parser.add_argument("--users", type=int, default=200, help="users, 10 profile entries each")
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    parser.add_argument("--database", default="bench_cpu", help="PostgreSQL database (dropped)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    async with real_app(args) as app:
        pg_version = None if args.sqlite else await common.postgres_version(args.database)
        print(common.machine_summary(pg_version))
        print(
            f"database={'sqlite' if args.sqlite else 'postgresql'} rounds={args.rounds} "
            f"requests={args.requests} warmup={args.warmup} users={args.users}\n",
            flush=True,
        )
        api_key, users = await seed(app, args)

        def insert_variables(i: int) -> dict[str, Any]:
            blob = {"chat": {"messages": chat_messages(i)}}
            return {"input": {"userId": users[i % len(users)], "blob": blob}}

        def profile_variables(i: int) -> dict[str, Any]:
            return {"id": users[(i * 7919) % len(users)]}

        async with (
            client_for(noop_app) as noop,
            client_for(floor_app()) as floor,
            client_for(floor_app(cached=False)) as uncached,
            client_for(app) as real,
        ):
            requests = {
                "transport": request_for(noop, api_key, PROFILE, profile_variables),
                "floor": request_for(floor, api_key, PROFILE, profile_variables),
                "floor, uncached": request_for(uncached, api_key, PROFILE, profile_variables),
                "insertBlob": request_for(real, api_key, INSERT, insert_variables),
                "profile": request_for(real, api_key, PROFILE, profile_variables),
            }
            results, loads = await measure(requests, args)
    print()
    data = report(results, loads)
    if args.json:
        dump = {
            "machine": common.machine_summary(pg_version),
            "args": {k: str(v) for k, v in vars(args).items()},
            "cases": data,
            "load1": [asdict(x) for x in loads],
        }
        args.json.write_text(json.dumps(dump, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
