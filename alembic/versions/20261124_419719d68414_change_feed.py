"""change feed

Revision ID: 419719d68414
Revises: 94db79b0d4ff
Create Date: 2026-11-24 09:38:22.574227
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import powermemo_gql.core.types

revision: str = '419719d68414'
down_revision: str | None = '94db79b0d4ff'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('sub_topic', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('flush_id', sa.Uuid(), nullable=True),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_changes_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_changes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_changes'))
    )
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_changes_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_changes_user_id_id'), ['user_id', 'id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_changes_user_id_id'))
        batch_op.drop_index(batch_op.f('ix_changes_project_id'))

    op.drop_table('changes')

