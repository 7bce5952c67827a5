"""event summary search: a full-text GIN index on PostgreSQL

Revision ID: 8c1d2e3f4a5b
Revises: 621e7955a467
Create Date: 2026-11-24 09:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8c1d2e3f4a5b"
down_revision: str | None = "621e7955a467"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite has no to_tsvector; there `user.events(search:)` scans the user's events instead.
# The expression must match events/repository.py (config 'simple') for the index to be used.


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_events_summary_fts ON events "
            "USING gin (to_tsvector('simple', summary))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_events_summary_fts")
