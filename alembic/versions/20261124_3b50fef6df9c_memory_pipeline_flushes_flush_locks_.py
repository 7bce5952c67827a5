"""memory pipeline: flushes, flush locks, profile revisions, project profile config

Revision ID: 3b50fef6df9c
Revises: 1fa15fb5ce3f
Create Date: 2026-11-24 09:00:08.604974
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql
import powermemo_gql.core.types

revision: str = '3b50fef6df9c'
down_revision: str | None = '1fa15fb5ce3f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('flush_locks',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('flush_id', sa.Uuid(), nullable=False),
    sa.Column('expires_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_flush_locks_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_flush_locks'))
    )
    op.create_table('flushes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('trigger', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('llm_calls', sa.Integer(), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('started_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_flushes_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_flushes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flushes'))
    )
    with op.batch_alter_table('flushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flushes_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flushes_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_flushes_user_id_started_at'), ['user_id', 'started_at'], unique=False)

    op.create_table('profile_revisions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('sub_topic', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source_event_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_profile_revisions_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_profile_revisions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_profile_revisions'))
    )
    with op.batch_alter_table('profile_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_profile_revisions_entry_id_created_at'), ['entry_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_profile_revisions_project_id'), ['project_id'], unique=False)

    with op.batch_alter_table('buffer_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flush_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_buffer_items_flush_id_flushes'), 'flushes', ['flush_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('profile_config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False, server_default=sa.text("'{}'")))



def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('profile_config')

    with op.batch_alter_table('buffer_items', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_buffer_items_flush_id_flushes'), type_='foreignkey')
        batch_op.drop_column('flush_id')

    with op.batch_alter_table('profile_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_profile_revisions_project_id'))
        batch_op.drop_index(batch_op.f('ix_profile_revisions_entry_id_created_at'))

    op.drop_table('profile_revisions')
    with op.batch_alter_table('flushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flushes_user_id_started_at'))
        batch_op.drop_index(batch_op.f('ix_flushes_status'))
        batch_op.drop_index(batch_op.f('ix_flushes_project_id'))

    op.drop_table('flushes')
    op.drop_table('flush_locks')
