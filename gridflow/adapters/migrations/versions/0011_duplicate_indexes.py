"""Partial indexes on open cases for finding a new report's possible duplicates (same category nearby and
recent; same caller's phone)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 15:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_cases_open_category', 'cases', ['category', 'opened_at'], unique=False,
                    sqlite_where=sa.text('closed = 0'), postgresql_where=sa.text('NOT closed'))
    op.create_index('ix_cases_open_phone', 'cases', ['reporter_phone', 'opened_at'], unique=False,
                    sqlite_where=sa.text('closed = 0'), postgresql_where=sa.text('NOT closed'))


def downgrade() -> None:
    op.drop_index('ix_cases_open_phone', table_name='cases')
    op.drop_index('ix_cases_open_category', table_name='cases')
