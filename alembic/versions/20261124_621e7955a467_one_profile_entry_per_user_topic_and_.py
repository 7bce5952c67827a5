"""one profile entry per user topic and sub-topic

Revision ID: 621e7955a467
Revises: 3b50fef6df9c
Create Date: 2026-11-24 09:15:32.348066
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import powermemo_gql.core.types

revision: str = '621e7955a467'
down_revision: str | None = '3b50fef6df9c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Duplicates could only come from a race before this constraint; keep the newest of each.
    op.execute(
        "DELETE FROM profile_entries WHERE id IN ("
        " SELECT p.id FROM profile_entries p JOIN profile_entries q"
        " ON p.user_id = q.user_id AND p.topic = q.topic AND p.sub_topic = q.sub_topic"
        " AND (p.updated_at < q.updated_at OR (p.updated_at = q.updated_at AND p.id < q.id)))"
    )
    with op.batch_alter_table('profile_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_profile_entries_user_id_topic_sub_topic'))
        batch_op.create_unique_constraint(batch_op.f('uq_profile_entries_user_id_topic_sub_topic'), ['user_id', 'topic', 'sub_topic'])


def downgrade() -> None:
    with op.batch_alter_table('profile_entries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_profile_entries_user_id_topic_sub_topic'), type_='unique')
        batch_op.create_index(batch_op.f('ix_profile_entries_user_id_topic_sub_topic'), ['user_id', 'topic', 'sub_topic'], unique=False)
