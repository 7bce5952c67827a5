"""drop unused keyword indexes: search's keyword side runs in process

Recall's keyword side reads its words from an in-process index per user
(recall/memory_index.py), so the PostgreSQL full-text indexes made for it, on facts'
content and on profile entries' keyword text, are read by no query and only cost writes.
The one on event summaries stays: `user.events(search:)` uses it.

Revision ID: 7b4d2e8f3a61
Revises: 6a3e9f1c2d57
Create Date: 2026-12-02 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '7b4d2e8f3a61'
down_revision: str | None = '6a3e9f1c2d57'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_event_facts_content_fts")
        op.execute("DROP INDEX IF EXISTS ix_profile_entries_keyword_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_event_facts_content_fts ON event_facts "
            "USING gin (to_tsvector('simple', content))"
        )
        op.execute(
            "CREATE INDEX ix_profile_entries_keyword_fts ON profile_entries "
            "USING gin (to_tsvector('simple', topic || ' ' || sub_topic || ' ' || content))"
        )
