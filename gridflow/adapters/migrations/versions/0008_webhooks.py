"""Channels: intake sources (signed webhooks in) and webhook subscribers (signed webhooks out)

Self-contained (two new tables, nothing else touched), so it can be re-chained after any revision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import gridflow.adapters.orm


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('intake_sources',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('workflow', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reporter_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('webhook_subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=True),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )


def downgrade() -> None:
    op.drop_table('webhook_subscribers')
    op.drop_table('intake_sources')
