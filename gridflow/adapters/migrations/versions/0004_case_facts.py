"""Per-unit statistical facts (三率), derived from history and written with it

After upgrading a database that already has history, run ``gridflow stats rebuild`` once to derive the
facts of the cases written before this revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 14:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import gridflow.adapters.orm


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_facts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('workflow', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('occurred_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('ref', sa.Integer(), nullable=True),
    sa.Column('due_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=True),
    sa.Column('peer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('community_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('street_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('case_facts', schema=None) as batch_op:
        batch_op.create_index('ix_case_facts_case', ['case_id', 'seq'], unique=False)
        batch_op.create_index('ix_case_facts_day', ['day'], unique=False)
        batch_op.create_index('ix_case_facts_unit_kind_day', ['unit', 'kind', 'day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_case_facts_unit_kind_day')
        batch_op.drop_index('ix_case_facts_day')
        batch_op.drop_index('ix_case_facts_case')
    op.drop_table('case_facts')
