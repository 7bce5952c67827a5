"""profile entries keyword index: search's keyword side uses an index on PostgreSQL

Recall's keyword side matches `topic || ' ' || sub_topic || ' ' || content` of profile
entries (recall/sources.py keyword_text); without an index on that expression PostgreSQL
parsed every entry of the user on every search. Events and facts have theirs already.

Revision ID: 5e7a1c9d2b40
Revises: 10c2a666373c
Create Date: 2026-12-02 05:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '5e7a1c9d2b40'
down_revision: str | None = '10c2a666373c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite has no to_tsvector; there the keyword side scans the user's rows.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_profile_entries_keyword_fts ON profile_entries "
            "USING gin (to_tsvector('simple', topic || ' ' || sub_topic || ' ' || content))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_profile_entries_keyword_fts")
