"""config_items: cameras, devices and device profiles changed through the API (the file is the seed)

Revision ID: 0004
Revises: 0003_activity
Create Date: 2026-12-01 12:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003_activity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'config_items',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('item_id', sa.String(length=100), nullable=False),
        sa.Column('doc', sa.JSON(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'item_id'),
    )


def downgrade() -> None:
    op.drop_table('config_items')
