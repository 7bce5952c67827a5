"""Search latency at N memories of one user (10k facts by default), per mode, with a floor.

Seeds one user's facts and their vectors (the word embedder of tests/recall_support.py, at
--dimensions) straight into a migrated database: a new SQLite file by default, or
--database-url (it is migrated, never dropped; a new project is added). Then times
SearchService.search, one call at a time, the way user.search runs it (vectors cached in
memory after the first call); the floor is the numpy scan alone over the same matrix.

    .venv/bin/python bench/recall_search.py [--memories 10000] [--dimensions 384]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from powermemo_gql.core import migrations
from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.types import utcnow
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.events.models import Event
from powermemo_gql.projects.models import Project
from powermemo_gql.recall import pgvector
from powermemo_gql.recall.models import EventFact, MemoryVector
from powermemo_gql.recall.search import SearchMode, SearchRequest, SearchService
from powermemo_gql.recall.vectors import VectorCache, top
from powermemo_gql.settings import Settings
from powermemo_gql.users.models import User
from tests.recall_support import WordEmbedder

# A vocabulary wide enough that a query's words match a few hundred rows, not all.
VOCABULARY = [f"w{i}" for i in range(3000)] + ["alps", "hiking", "boots", "cat", "lyon", "guitar"]
QUERIES = ((SearchMode.VECTOR, "hiking boots in the alps"), (SearchMode.HYBRID, "hiking boots"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def seed(sessions: object, embedder: WordEmbedder, memories: int) -> tuple[uuid.UUID, ...]:
    rng = np.random.default_rng(1)
    async with unit_of_work(sessions) as session:  # type: ignore[arg-type]
        project = Project(name=f"bench-recall-{uuid.uuid4().hex[:8]}")
        session.add(project)
        await session.flush()
        user = User(project_id=project.id, external_id="bench")
        session.add(user)
        await session.flush()
        event = Event(project_id=project.id, user_id=user.id, summary="seed")
        event.embedded_model = embedder.model
        session.add(event)
        await session.flush()
        now = utcnow()
        for start in range(0, memories, 1000):
            facts, vectors = [], []
            for i in range(start, min(memories, start + 1000)):
                text = " ".join(rng.choice(VOCABULARY, 8))
                fact_id = uuid.uuid4()
                facts.append(
                    {
                        "id": fact_id,
                        "project_id": project.id,
                        "user_id": user.id,
                        "event_id": event.id,
                        "position": i,
                        "content": text,
                        "happened_from": now,
                        "happened_to": now,
                        "source_blob_ids": [],
                        "embedded_model": embedder.model,
                        "created_at": now,
                    }
                )
                vectors.append(
                    {
                        "kind": "fact",
                        "target_id": fact_id,
                        "user_id": user.id,
                        "project_id": project.id,
                        "model": embedder.model,
                        "dimensions": embedder.dimensions,
                        "vector": np.asarray(embedder.vector(text), dtype="<f4").tobytes(),
                        "created_at": now,
                    }
                )
            await session.execute(insert(EventFact), facts)
            await session.execute(insert(MemoryVector), vectors)
    return project.id, user.id


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--exact-scan", action="store_true", help="PostgreSQL: the in-process scan, not pgvector"
    )
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = create_engine(Settings(database_url=url, mode="development"))
    await migrations.upgrade(engine)
    sessions = create_session_factory(engine)
    embedder = WordEmbedder(dimensions=args.dimensions)
    project_id, user_id = await seed(sessions, embedder, args.memories)
    cache = VectorCache()
    # Seeded straight into the table: detection (as at start-up) copies them into `embedding`.
    in_sql = await pgvector.detect(engine) and not args.exact_scan
    cache.use_pgvector = not args.exact_scan
    print(
        f"{engine.dialect.name}, {args.memories:,} memories, {args.dimensions} dimensions, "
        f"vector search: {'pgvector' if in_sql else 'exact scan'}, "
        f"load1 {os.getloadavg()[0]:.1f}"
    )
    for mode, query in QUERIES:
        request = SearchRequest(query=query, mode=mode)
        timings = []
        for i in range(args.requests + 10):
            began = time.perf_counter()
            async with unit_of_work(sessions) as session:
                await SearchService(session, embedder, cache).search(project_id, user_id, request)
            if i >= 10:  # the first calls load the cache
                timings.append((time.perf_counter() - began) * 1000)
        print(
            f"{mode.value:>7} p50 {statistics.median(timings):6.1f} ms  "
            f"p99 {percentile(timings, 0.99):6.1f} ms"
        )
    matrix = np.random.default_rng(2).random((args.memories, args.dimensions), dtype=np.float32)
    query_vector = matrix[0]
    floor = []
    for _ in range(args.requests):
        began = time.perf_counter()
        top(np.einsum("ij,j->i", matrix, query_vector), 100)  # as vectors.most_similar
        floor.append((time.perf_counter() - began) * 1000)
    print(f"  floor p50 {statistics.median(floor):6.1f} ms  p99 {percentile(floor, 0.99):6.1f} ms")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
