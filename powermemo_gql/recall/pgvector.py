"""The vector side of search inside PostgreSQL, when the server has the pgvector extension.

The migration adds `memory_vectors.embedding` (type `vector`, no fixed dimensions: each row
keeps the size of the model that made it, and search compares only rows of the query's model
and size) when it could create the extension. Then every stored vector is written there too,
and search ranks in SQL, exactly (no approximate index: an index needs one fixed size, and a
user's rows are few enough to compare all of them). Otherwise, and on SQLite, the exact
per-user scan of recall/vectors.py runs; both give the same ranked hits.

The column is not in the SQLModel models (it exists on some databases only), so it is read
and written here with its name.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Engine,
    Text,
    bindparam,
    cast,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlmodel import col

from powermemo_gql.recall.models import MemoryVector, RecallKind, VectorType
from powermemo_gql.recall.repository import Scope, _event_of, _in_scope
from powermemo_gql.recall.sources import SOURCES

logger = logging.getLogger(__name__)

COLUMN = "embedding"
_DETECT = text(
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector'), "
    "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'memory_vectors' AND column_name = 'embedding'), "
    "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')"
)
_STORE = text(
    "UPDATE memory_vectors SET embedding = CAST(CAST(:vector AS text) AS vector) "
    "WHERE kind = :kind AND target_id = :target"
)
# Per engine (one database): whether the column is there. Asked once, at start-up or on
# first use; a database changed under a running process is seen after its restart.
_known: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def literal_of(vector: Sequence[float] | bytes) -> str:
    """pgvector's text form of a vector, from its floats or its stored float32 bytes. Each
    value is the exact float32 (as the exact scan compares), written so that it reads back
    to the same float32."""
    values = (
        np.frombuffer(vector, dtype="<f4")
        if isinstance(vector, bytes)
        else np.asarray(vector, dtype=np.float32)
    )
    return "[" + ",".join(repr(v) for v in values.astype(np.float64).tolist()) + "]"


async def _ask(connection: AsyncConnection | AsyncSession) -> tuple[bool, bool, bool]:
    row = (await connection.execute(_DETECT)).one()
    return bool(row[0]), bool(row[1]), bool(row[2])


async def detect(engine: AsyncEngine) -> bool:
    """Whether search runs in SQL on this database; logged once at start-up."""
    if engine.dialect.name != "postgresql":
        return False
    async with engine.connect() as connection:
        installed, column, available = await _ask(connection)
    active = installed and column
    _known[engine.sync_engine] = active
    if active:
        filled = await fill_missing(engine)
        logger.info("pgvector: in use, vector search runs in PostgreSQL (%d copies made)", filled)
    elif available:
        logger.warning(
            "pgvector: the server has it but this database does not use it (the migration "
            "could not create the extension); exact per-user scan. See docs/recall.md"
        )
    else:
        logger.info("pgvector: not on this server; exact per-user scan")
    return active


async def fill_missing(engine: AsyncEngine, batch: int = 500) -> int:
    """Copies the vectors that have none in `embedding` (stored by a process that started
    before the migration added the column): search in SQL would not see them."""
    filled = 0
    while True:
        async with engine.begin() as connection:
            rows = list(
                await connection.execute(
                    text(
                        "SELECT kind, target_id, vector FROM memory_vectors "
                        "WHERE embedding IS NULL LIMIT :batch FOR UPDATE SKIP LOCKED"
                    ),
                    {"batch": batch},
                )
            )
            if not rows:
                return filled
            await connection.execute(
                _STORE, [{"vector": literal_of(v), "kind": k, "target": t} for k, t, v in rows]
            )
        filled += len(rows)


async def available(session: AsyncSession) -> bool:
    """Whether this session's database stores and searches vectors with pgvector."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    engine = bind.engine
    known = _known.get(engine)
    if known is None:
        installed, column, _ = await _ask(session)
        known = _known[engine] = installed and column
    return known


async def store(
    session: AsyncSession, kind: RecallKind, target_id: uuid.UUID, vector: bytes
) -> None:
    """The pgvector copy of a vector row just written (same transaction)."""
    await session.execute(
        _STORE, {"vector": literal_of(vector), "kind": kind.value, "target": target_id}
    )


async def most_similar(
    session: AsyncSession,
    query: Sequence[float],
    kinds: Sequence[RecallKind],
    scope: Scope,
    allowed_events: set[uuid.UUID | None] | None,
    model: str,
    dimensions: int,
    limit: int,
) -> list[tuple[RecallKind, uuid.UUID, uuid.UUID | None, float]]:
    """As vectors.most_similar, ranked by PostgreSQL: the `limit` rows in scope most similar
    to the query, best first. Vectors are unit length, so the inner product (`<#>`, negated)
    is the cosine, computed as the exact scan computes it; rows whose vector is stale (the row
    changed, or another model made it) are left out as there."""
    embedding: ColumnElement[Any] = literal_column(f"memory_vectors.{COLUMN}")
    wanted = cast(cast(bindparam("query", literal_of(query), type_=Text), Text), VectorType())
    selects = []
    for kind in kinds:
        source = SOURCES[kind]
        event = _event_of(source)
        stmt = (
            select(
                literal(kind.value).label("kind"),
                col(MemoryVector.target_id).label("target_id"),
                event.label("event_id"),
                embedding.op("<#>")(wanted).label("distance"),
            )
            .join(source.model, source.id == col(MemoryVector.target_id))
            .where(
                col(MemoryVector.user_id) == scope.user_id,
                col(MemoryVector.project_id) == scope.project_id,
                col(MemoryVector.kind) == kind.value,
                col(MemoryVector.model) == model,
                col(MemoryVector.dimensions) == dimensions,
                embedding.is_not(None),
                source.embedded_model == model,  # not stale
                *_in_scope(source, scope),
            )
        )
        if allowed_events is not None:
            stmt = stmt.where(event.in_([e for e in allowed_events if e is not None]))
        selects.append(stmt)
    ranked = (
        union_all(*selects)
        .order_by(literal_column("distance"), literal_column("kind"), literal_column("target_id"))
        .limit(limit)
    )
    return [
        (RecallKind(row[0]), row[1], row[2], -float(row[3]))
        for row in await session.execute(ranked)
    ]
