"""activity: anomalies of the 'activity' review tier (recorded per camera, never a ticket)

Revision ID: 0003_activity
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0003_activity'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'activity',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('anomaly_id', sa.String(length=64), nullable=False),
        sa.Column('source_kind', sa.String(length=16), nullable=False),
        sa.Column('source_id', sa.String(length=100), nullable=False),
        sa.Column('zone', sa.String(length=100), nullable=True),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('category', sa.String(length=8), nullable=True),
        sa.Column('grid_code', sa.String(length=15), nullable=True),
        sa.Column('lon', sa.Float(), nullable=False),
        sa.Column('lat', sa.Float(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('title', sa.String(length=300), nullable=True),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('anomaly_id'),
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_grid_code'), ['grid_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index('ix_activity_camera_time', ['source_id', 'occurred_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_camera_time')
        batch_op.drop_index(batch_op.f('ix_activity_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_activity_grid_code'))
    op.drop_table('activity')
