"""flush leases scoped by project

Revision ID: 94db79b0d4ff
Revises: 8c1d2e3f4a5b
Create Date: 2026-11-24 09:33:13.522135
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import powermemo_gql.core.types

revision: str = '94db79b0d4ff'
down_revision: str | None = '8c1d2e3f4a5b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Live leases keep working: the column is filled from the lease's user before it
    # becomes NOT NULL.
    with op.batch_alter_table('flush_locks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE flush_locks SET project_id = "
        "(SELECT users.project_id FROM users WHERE users.id = flush_locks.user_id)"
    )
    with op.batch_alter_table('flush_locks', schema=None) as batch_op:
        batch_op.alter_column('project_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.create_index(batch_op.f('ix_flush_locks_project_id'), ['project_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_flush_locks_project_id_projects'), 'projects', ['project_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('flush_locks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_flush_locks_project_id_projects'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_flush_locks_project_id'))
        batch_op.drop_column('project_id')
