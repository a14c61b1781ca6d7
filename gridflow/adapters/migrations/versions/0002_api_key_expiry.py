"""API keys may expire; runtime state (the scaled clock's epoch) survives restarts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import gridflow.adapters.orm


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', gridflow.adapters.orm.UTCDateTime(timezone=True),
                                      nullable=True))
    op.create_table('runtime_state',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('runtime_state')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
