"""per-user change seq: change cursors carry the user's own numbering, not the global id

Revision ID: 68bd8fa45131
Revises: 8b6fef182cd9
Create Date: 2026-12-01 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '68bd8fa45131'
down_revision: str | None = 'c86437a4aa3b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch copy of `users` on SQLite would drop the table, and with
    # foreign keys on, that cascades to every row referring to it.
    op.add_column(
        'users', sa.Column('change_seq', sa.BigInteger(), server_default='0', nullable=False)
    )
    op.add_column('changes', sa.Column('seq', sa.BigInteger(), nullable=True))
    # Existing changes are numbered per user in their (commit) order.
    op.execute(
        'UPDATE changes SET seq = (SELECT count(*) FROM changes AS earlier '
        'WHERE earlier.user_id = changes.user_id AND earlier.id <= changes.id)'
    )
    op.execute(
        'UPDATE users SET change_seq = (SELECT coalesce(max(changes.seq), 0) FROM changes '
        'WHERE changes.user_id = users.id)'
    )
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_index(batch_op.f('ix_changes_user_id_id'))
        batch_op.create_index(batch_op.f('ix_changes_user_id_seq'), ['user_id', 'seq'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_changes_user_id_seq'))
        batch_op.create_index(batch_op.f('ix_changes_user_id_id'), ['user_id', 'id'], unique=False)
        batch_op.drop_column('seq')
    # Not batch_op on `users` (see upgrade); SQLite >= 3.35 drops a column in place.
    op.execute('ALTER TABLE users DROP COLUMN change_seq')
