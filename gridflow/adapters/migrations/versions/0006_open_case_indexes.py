"""Read-side indexes: worklists and lists that depend on what is open, not on what was ever stored

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:10:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # the indexes are added by the read-side work (issue 12)


def downgrade() -> None:
    pass
