"""Worklist columns: the most urgent due instant, the suspended flag, and the co-handling units

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 13:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import gridflow.adapters.orm


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', gridflow.adapters.orm.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('suspended', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('co_units', sqlmodel.sql.sqltypes.AutoString(length=400),
                                      nullable=False, server_default=''))
        batch_op.create_index('ix_cases_worklist_due', ['holder_unit', 'closed', 'due_at'], unique=False)
        batch_op.create_index('ix_cases_escalation_due', ['escalation_unit', 'closed', 'due_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_escalation_due')
        batch_op.drop_index('ix_cases_worklist_due')
        batch_op.drop_column('co_units')
        batch_op.drop_column('suspended')
        batch_op.drop_column('due_at')
