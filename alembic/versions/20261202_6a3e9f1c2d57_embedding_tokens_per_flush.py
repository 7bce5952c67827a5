"""embedding tokens per flush: what indexing a flush's rows cost, and which rows are its

Revision ID: 6a3e9f1c2d57
Revises: 5e1d2c7a9b40
Create Date: 2026-12-02 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '6a3e9f1c2d57'
down_revision: str | None = '5e1d2c7a9b40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROWS = ('profile_entries', 'events', 'event_facts')


def upgrade() -> None:
    with op.batch_alter_table('flushes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('embedding_texts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('embedding_tokens', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('flushes', schema=None) as batch_op:
        batch_op.alter_column('embedding_texts', existing_type=sa.Integer(), server_default=None)
        batch_op.alter_column('embedding_tokens', existing_type=sa.Integer(), server_default=None)
    # Rows written before this are charged to no flush (their tokens are in the project's).
    for table in _ROWS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('embedding_flush_id', sa.Uuid(), nullable=True))


def downgrade() -> None:
    for table in reversed(_ROWS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('embedding_flush_id')
    with op.batch_alter_table('flushes', schema=None) as batch_op:
        batch_op.drop_column('embedding_tokens')
        batch_op.drop_column('embedding_texts')
