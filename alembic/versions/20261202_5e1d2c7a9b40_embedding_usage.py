"""embedding usage: texts embedded and tokens spent indexing each project's memory

Revision ID: 5e1d2c7a9b40
Revises: 5e7a0c3d9b21
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5e1d2c7a9b40'
down_revision: str | None = '5e7a0c3d9b21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'embedding_usage',
        sa.Column('project_id', sa.Uuid(), nullable=False),
        sa.Column('texts', sa.Integer(), nullable=False),
        sa.Column('tokens', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['project_id'], ['projects.id'],
            name=op.f('fk_embedding_usage_project_id_projects'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('project_id', name=op.f('pk_embedding_usage')),
    )


def downgrade() -> None:
    op.drop_table('embedding_usage')
