"""initial schema

Revision ID: 1fa15fb5ce3f
Revises: 
Create Date: 2026-11-24 08:30:36.002702
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql
import powermemo_gql.core.types

revision: str = '1fa15fb5ce3f'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('projects',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('name', name=op.f('uq_projects_name'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_api_keys_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_project_id'), ['project_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_users_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('project_id', 'external_id', name=op.f('uq_users_project_id_external_id'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_project_id_created_at_id'), ['project_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_users_project_id_updated_at_id'), ['project_id', 'updated_at', 'id'], unique=False)

    op.create_table('blobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_blobs_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_blobs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blobs'))
    )
    with op.batch_alter_table('blobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blobs_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_blobs_user_id_created_at_id'), ['user_id', 'created_at', 'id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('profile_delta', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_events_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_events_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_user_id_created_at_id'), ['user_id', 'created_at', 'id'], unique=False)

    op.create_table('buffer_items',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('blob_id', sa.Uuid(), nullable=False),
    sa.Column('blob_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('token_count', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['blob_id'], ['blobs.id'], name=op.f('fk_buffer_items_blob_id_blobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_buffer_items_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_buffer_items_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buffer_items')),
    sa.UniqueConstraint('blob_id', name=op.f('uq_buffer_items_blob_id'))
    )
    with op.batch_alter_table('buffer_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_buffer_items_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_buffer_items_user_id_status_created_at'), ['user_id', 'status', 'created_at'], unique=False)

    op.create_table('profile_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('sub_topic', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source_blob_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('source_event_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', powermemo_gql.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_profile_entries_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_event_id'], ['events.id'], name=op.f('fk_profile_entries_source_event_id_events'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_profile_entries_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_profile_entries'))
    )
    with op.batch_alter_table('profile_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_profile_entries_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_profile_entries_user_id_topic_sub_topic'), ['user_id', 'topic', 'sub_topic'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('profile_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_profile_entries_user_id_topic_sub_topic'))
        batch_op.drop_index(batch_op.f('ix_profile_entries_project_id'))

    op.drop_table('profile_entries')
    with op.batch_alter_table('buffer_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_buffer_items_user_id_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_buffer_items_project_id'))

    op.drop_table('buffer_items')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_user_id_created_at_id'))
        batch_op.drop_index(batch_op.f('ix_events_project_id'))

    op.drop_table('events')
    with op.batch_alter_table('blobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blobs_user_id_created_at_id'))
        batch_op.drop_index(batch_op.f('ix_blobs_project_id'))

    op.drop_table('blobs')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_project_id_updated_at_id'))
        batch_op.drop_index(batch_op.f('ix_users_project_id_created_at_id'))

    op.drop_table('users')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_project_id'))

    op.drop_table('api_keys')
    op.drop_table('projects')
    
