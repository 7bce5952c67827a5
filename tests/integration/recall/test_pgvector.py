"""pgvector: search ranks in PostgreSQL where the extension is in use, with the same ranked hits
as the exact per-user scan; the migration creates it when it may and stays harmless when not.

The pgvector tests need a PostgreSQL with the extension (.ci/run starts one from the `pgserver`
package); elsewhere they skip, and POWERMEMO_TEST_PGVECTOR=required makes them fail instead.
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.core import migrations
from powermemo_gql.core.db import create_engine
from powermemo_gql.recall import pgvector
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.search import SearchMode, SearchRequest, SearchService, VectorSearch
from powermemo_gql.users.models import User
from tests.conftest import TEST_DATABASE_URL, make_settings
from tests.integration.recall.conftest import Memory
from tests.recall_support import WordEmbedder
from tests.support import ProjectHandle

REQUIRED = os.environ.get("POWERMEMO_TEST_PGVECTOR") == "required"
BEFORE_PGVECTOR = "5e7a1c9d2b40"
START = datetime(2024, 1, 1, tzinfo=UTC)
TOPICS = ["interest", "work", "health", "family"]
WORDS = "hiking cooking chess piano tennis garden travel books cinema running coffee painting"


class NoisyWordEmbedder(WordEmbedder):
    """Word concepts plus a small per-text jitter: texts sharing words stay close, but no two
    similarities tie (a tie may be ordered either way by either path)."""

    def vector(self, text: str) -> list[float]:
        base = np.asarray(super().vector(text))
        jitter = np.random.default_rng(zlib.crc32(text.encode())).normal(0, 0.05, base.size)
        mixed = base + jitter
        return [float(x) for x in mixed / np.linalg.norm(mixed)]


@pytest.fixture
def embedder() -> WordEmbedder:
    return NoisyWordEmbedder()


def _need_pgvector(active: bool) -> None:
    if active:
        return
    if REQUIRED:
        pytest.fail("POWERMEMO_TEST_PGVECTOR=required but pgvector is not in use on this database")
    pytest.skip("needs PostgreSQL with the pgvector extension")


async def _load(app: Starlette, project: ProjectHandle, user: str, seed: int) -> Memory:
    memory = await Memory(app, project.api, user).create()
    rng = np.random.default_rng(seed)
    words = WORDS.split()
    for i in range(24):
        liked = " ".join(rng.choice(words, 3, replace=False))
        await memory.entry(TOPICS[i % len(TOPICS)], f"sub{i}", f"Likes {liked} ({user} {i})")
    for i in range(16):
        picked = rng.choice(words, 4, replace=False)
        # Each fact line unique ("on day i"): two events may pick the same pair of words,
        # and equal texts get equal vectors, a tie either path may order either way.
        summary = (
            f"- Went {picked[0]} with {picked[1]} on day {i}\n"
            f"- Talked about {picked[2]} and {picked[3]} on day {i}"
        )
        tags = [{"tag": "mood", "value": "good" if i % 2 else "bad"}]
        await memory.event(summary, tags=tags, happened=START + timedelta(days=i))
    await memory.indexed()
    return memory


async def _ids(memory: Memory) -> tuple[uuid.UUID, uuid.UUID]:
    async with memory.resources.sessions() as session:
        user = (
            await session.scalars(select(User).where(col(User.external_id) == memory.user))
        ).one()
        return user.project_id, user.id


async def _ranked(
    memory: Memory, request: SearchRequest, use_pgvector: bool
) -> tuple[
    VectorSearch | None, list[tuple[RecallKind, uuid.UUID, int | None, int | None]], list[float]
]:
    resources = memory.resources
    project_id, user_id = await _ids(memory)
    resources.vectors.use_pgvector = use_pgvector
    try:
        async with resources.sessions() as session:
            service = SearchService(session, resources.embedder, resources.vectors)
            found = await service.search(project_id, user_id, request)
    finally:
        resources.vectors.use_pgvector = True
    hits = [(h.kind, h.row.id, h.vector_rank, h.keyword_rank) for h in found.hits]
    return found.vector_search, hits, [h.similarity or 0.0 for h in found.hits]


REQUESTS: Sequence[SearchRequest] = [
    SearchRequest("chess and piano", first=100, mode=SearchMode.VECTOR),
    SearchRequest("a walk in the garden with coffee", first=30),
    SearchRequest("travel books", first=20, kinds=(RecallKind.FACT, RecallKind.EVENT)),
    SearchRequest("tennis", first=15, topics=("work", "health")),
    SearchRequest("running", first=25, tags=("mood:good",), mode=SearchMode.VECTOR),
    SearchRequest(
        "cinema painting",
        first=25,
        happened_after=START + timedelta(days=3),
        happened_before=START + timedelta(days=9),
    ),
]


async def test_pgvector_and_the_exact_scan_give_the_same_ranked_hits(
    app: Starlette, project: ProjectHandle
) -> None:
    alice = await _load(app, project, "alice", seed=1)
    bob = await _load(app, project, "bob", seed=2)  # same project, other user: never found
    _need_pgvector(await pgvector.detect(alice.resources.engine))
    bob_id = (await _ids(bob))[1]
    for request in REQUESTS:
        sql_path, in_sql, sql_scores = await _ranked(alice, request, use_pgvector=True)
        scan_path, scanned, scan_scores = await _ranked(alice, request, use_pgvector=False)
        assert (sql_path, scan_path) == (VectorSearch.PGVECTOR, VectorSearch.EXACT_SCAN)
        assert in_sql, request
        assert in_sql == scanned, request
        assert sql_scores == pytest.approx(scan_scores, abs=1e-5), request
        assert not any(h[1] == bob_id for h in in_sql)


async def test_the_vector_path_follows_the_database(app: Starlette, project: ProjectHandle) -> None:
    """SQLite and a PostgreSQL without the extension: the exact scan; pgvector where in use."""
    alice = await _load(app, project, "alice", seed=3)
    expected = VectorSearch.EXACT_SCAN
    if TEST_DATABASE_URL:
        async with alice.resources.engine.connect() as connection:
            installed = await connection.scalar(
                sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
            )
        if installed:
            expected = VectorSearch.PGVECTOR
    path, hits, _ = await _ranked(alice, REQUESTS[0], use_pgvector=True)
    assert path is expected
    assert hits


async def test_the_migration_copies_vectors_stored_before_it(
    app: Starlette, project: ProjectHandle
) -> None:
    alice = await _load(app, project, "alice", seed=4)
    _need_pgvector(await pgvector.detect(alice.resources.engine))
    engine = create_engine(make_settings(str(TEST_DATABASE_URL)))
    try:
        await migrations.downgrade(engine, BEFORE_PGVECTOR)  # vectors stored without the column
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            rows = list(
                await connection.execute(
                    sa.text("SELECT vector, embedding::text, dimensions FROM memory_vectors")
                )
            )
    finally:
        await engine.dispose()
    assert len(rows) > 40
    for stored, embedding, dimensions in rows:
        copied = np.asarray([float(v) for v in embedding.strip("[]").split(",")], dtype="<f4")
        assert copied.size == dimensions
        assert copied.tobytes() == stored
    path, hits, _ = await _ranked(alice, REQUESTS[0], use_pgvector=True)
    assert path is VectorSearch.PGVECTOR
    assert len(hits) == 24 + 16 * 3  # every entry, event and fact found through the copies


async def test_start_up_copies_vectors_a_process_stored_without_the_column(
    app: Starlette, project: ProjectHandle
) -> None:
    """A process started before the migration added the column stores bytes only: the next
    start-up's detection copies them, so search in SQL still sees every row."""
    alice = await _load(app, project, "alice", seed=5)
    engine = alice.resources.engine
    _need_pgvector(await pgvector.detect(engine))
    async with engine.begin() as connection:
        await connection.execute(sa.text("UPDATE memory_vectors SET embedding = NULL"))
    assert await pgvector.detect(engine)
    async with engine.connect() as connection:
        missing = await connection.scalar(
            sa.text("SELECT count(*) FROM memory_vectors WHERE embedding IS NULL")
        )
    assert missing == 0
    _, in_sql, _ = await _ranked(alice, REQUESTS[0], use_pgvector=True)
    _, scanned, _ = await _ranked(alice, REQUESTS[0], use_pgvector=False)
    assert len(in_sql) == 24 + 16 * 3
    assert in_sql == scanned


async def test_without_the_right_to_create_it_the_migration_succeeds_without_pgvector(
    app: Starlette,
) -> None:
    _need_pgvector(await pgvector.detect(app.state.resources.engine))
    admin_url = make_url(str(TEST_DATABASE_URL))
    role = "powermemo_no_extensions"
    admin = create_engine(make_settings(admin_url.set(database="postgres").render_as_string(False)))
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text(f"DROP DATABASE IF EXISTS {role}"))
            await connection.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
            await connection.execute(sa.text(f"CREATE ROLE {role} LOGIN NOSUPERUSER"))
            await connection.execute(sa.text(f"CREATE DATABASE {role} OWNER {role}"))
        plain = create_engine(
            make_settings(admin_url.set(username=role, database=role).render_as_string(False))
        )
        try:
            await migrations.upgrade(plain)
            assert not await migrations.pending_revisions(plain)
            assert not await pgvector.detect(plain)
        finally:
            await plain.dispose()
    finally:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text(f"DROP DATABASE IF EXISTS {role}"))
            await connection.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        await admin.dispose()
