"""blob idempotency keys: one blob per (user, key), so a retried insert stores nothing twice

Revision ID: 10c2a666373c
Revises: 68bd8fa45131
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '10c2a666373c'
down_revision: str | None = '68bd8fa45131'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE, no batch copy: on SQLite dropping the copied `blobs` would cascade
    # to the buffer items that refer to it.
    op.add_column(
        'blobs',
        sa.Column(
            'idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True
        ),
    )
    op.create_index(
        op.f('ix_blobs_user_id_idempotency_key'), 'blobs', ['user_id', 'idempotency_key'],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_blobs_user_id_idempotency_key'), table_name='blobs')
    # SQLite >= 3.35 drops a column in place.
    op.execute('ALTER TABLE blobs DROP COLUMN idempotency_key')
