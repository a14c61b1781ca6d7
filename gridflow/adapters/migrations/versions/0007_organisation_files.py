"""The organisation as files: units can be retired, every load that changed something is recorded
(org_changes), and an address table locates reports given by text (org_addresses)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:20:00
"""
from alembic import op
import sqlalchemy as sa

import gridflow.adapters.orm


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('org_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Text(), nullable=False, server_default=''),
    sa.Column('diff', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_table('org_addresses',
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('unit_code', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['unit_code'], ['units.code'], ),
    sa.PrimaryKeyConstraint('address'),
    )
    with op.batch_alter_table('org_addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_addresses_unit_code'), ['unit_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('org_addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_addresses_unit_code'))
    op.drop_table('org_addresses')
    op.drop_table('org_changes')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('retired')
