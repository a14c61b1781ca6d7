"""The care register (特殊群体台账): people under care, each with a special_care_visit case

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:45:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('care_people',
    sa.Column('register_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('id_number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('group_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('grid_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('frequency', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('case_number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('register_id'),
    )
    with op.batch_alter_table('care_people', schema=None) as batch_op:
        batch_op.create_index('ix_care_people_grid', ['grid_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_care_people_case_number'), ['case_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('care_people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_care_people_case_number'))
        batch_op.drop_index('ix_care_people_grid')
    op.drop_table('care_people')
