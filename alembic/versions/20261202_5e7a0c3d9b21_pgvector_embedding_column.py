"""pgvector: memory_vectors.embedding where the server has the extension

Revision ID: 5e7a0c3d9b21
Revises: 5e7a1c9d2b40
Create Date: 2026-12-02 05:00:00.000000

PostgreSQL only, and only where it can be: when the server offers the `vector` extension and
this role may create it (or it is already created), memory_vectors gets an `embedding vector`
column (no fixed dimensions: models of different sizes share the table, search compares only
rows of one model and size) filled from the stored float32 bytes. Otherwise nothing changes and
search keeps the exact per-user scan. To enable it later: install pgvector, then
`alembic downgrade 5e7a1c9d2b40 && alembic upgrade head` (see docs/recall.md).
"""

import logging
import uuid
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = '5e7a0c3d9b21'
down_revision: str | None = '5e7a1c9d2b40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")
_BATCH = 500


def _literal(vector: bytes) -> str:
    """pgvector's text form of float32 bytes (a copy of recall/pgvector.py's: migrations
    never change)."""
    values = np.frombuffer(vector, dtype="<f4").astype(np.float64).tolist()
    return "[" + ",".join(repr(v) for v in values) + "]"


def _create_extension(bind: sa.Connection) -> bool:
    if not bind.scalar(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")):
        logger.info("pgvector is not on this server: exact per-user vector scan")
        return False
    try:
        with bind.begin_nested():  # a refusal must not abort the migration's transaction
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError as exc:
        logger.warning("could not create the pgvector extension (%s): exact per-user scan", exc.orig)
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _create_extension(bind):
        return
    op.execute("ALTER TABLE memory_vectors ADD COLUMN embedding vector")
    # The vectors stored before: copied, a page of keys at a time.
    after: tuple[str, uuid.UUID] = ("", uuid.UUID(int=0))
    while True:
        rows = list(
            bind.execute(
                sa.text(
                    "SELECT kind, target_id, vector FROM memory_vectors "
                    "WHERE (kind, target_id) > (:kind, :target) ORDER BY kind, target_id "
                    "LIMIT :batch"
                ),
                {"kind": after[0], "target": after[1], "batch": _BATCH},
            )
        )
        if not rows:
            return
        bind.execute(
            sa.text(
                "UPDATE memory_vectors SET embedding = CAST(CAST(:embedding AS text) AS vector) "
                "WHERE kind = :kind AND target_id = :target"
            ),
            [{"embedding": _literal(v), "kind": k, "target": t} for k, t, v in rows],
        )
        after = (rows[-1][0], rows[-1][1])


def downgrade() -> None:
    # The extension stays: other schemas may use it, and dropping it needs its owner.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE memory_vectors DROP COLUMN IF EXISTS embedding")
