"""Summary figures per day and per month, unit and area, kept with the facts; facts carry their grid

After upgrading a database that already has history, run ``gridflow stats rebuild`` once: it derives the
facts again (now with their grid) and sums them into the summary table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('case_facts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grid_code', sa.String(length=64), nullable=True))
    op.create_table('unit_day_stats',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=False),
    sa.Column('district_code', sa.String(length=64), nullable=False),
    sa.Column('street_code', sa.String(length=64), nullable=False),
    sa.Column('community_code', sa.String(length=64), nullable=False),
    sa.Column('grid_code', sa.String(length=64), nullable=False),
    sa.Column('receipts', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('responded', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('responded_on_time', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('responded_late', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('unanswered_returned', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('unanswered_withdrawn', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('unanswered_passed_on', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('received', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('resolved', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('merged', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rejected', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('closed_other', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('returned_unresolved', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('passed_on', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('withdrawn', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('closed', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rated', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('satisfied', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('basically_satisfied', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('dissatisfied', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rated_by_default', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rating_missing', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rework_rounds', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('failed_reviews', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('returns', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('improper_returns', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('extensions', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('suspensions', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_orders', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('key_supervision_orders', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_answered_on_time', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_answered_late', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_overdue', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('reminders', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('criticism_notices', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('breaches', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('escalations', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervised', sa.Integer(), nullable=False, server_default='0'),
    sa.PrimaryKeyConstraint('day', 'unit', 'district_code', 'street_code', 'community_code', 'grid_code',
                            name='pk_unit_day_stats'),
    )
    with op.batch_alter_table('unit_day_stats', schema=None) as batch_op:
        batch_op.create_index('ix_unit_day_stats_unit', ['unit', 'day'], unique=False)
        batch_op.create_index('ix_unit_day_stats_district', ['district_code', 'day'], unique=False)
        batch_op.create_index('ix_unit_day_stats_street', ['street_code', 'day'], unique=False)
        batch_op.create_index('ix_unit_day_stats_community', ['community_code', 'day'], unique=False)
        batch_op.create_index('ix_unit_day_stats_grid', ['grid_code', 'day'], unique=False)
    op.create_table('unit_month_stats',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=False),
    sa.Column('district_code', sa.String(length=64), nullable=False),
    sa.Column('street_code', sa.String(length=64), nullable=False),
    sa.Column('community_code', sa.String(length=64), nullable=False),
    sa.Column('grid_code', sa.String(length=64), nullable=False),
    sa.Column('receipts', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('responded', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('responded_on_time', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('responded_late', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('unanswered_returned', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('unanswered_withdrawn', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('unanswered_passed_on', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('received', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('resolved', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('merged', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rejected', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('closed_other', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('returned_unresolved', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('passed_on', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('withdrawn', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('closed', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rated', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('satisfied', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('basically_satisfied', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('dissatisfied', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rated_by_default', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rating_missing', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('rework_rounds', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('failed_reviews', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('returns', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('improper_returns', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('extensions', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('suspensions', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_orders', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('key_supervision_orders', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_answered_on_time', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_answered_late', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervision_overdue', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('reminders', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('criticism_notices', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('breaches', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('escalations', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('supervised', sa.Integer(), nullable=False, server_default='0'),
    sa.PrimaryKeyConstraint('month', 'unit', 'district_code', 'street_code', 'community_code', 'grid_code',
                            name='pk_unit_month_stats'),
    )
    with op.batch_alter_table('unit_month_stats', schema=None) as batch_op:
        batch_op.create_index('ix_unit_month_stats_unit', ['unit', 'month'], unique=False)
        batch_op.create_index('ix_unit_month_stats_district', ['district_code', 'month'], unique=False)
        batch_op.create_index('ix_unit_month_stats_street', ['street_code', 'month'], unique=False)
        batch_op.create_index('ix_unit_month_stats_community', ['community_code', 'month'], unique=False)
        batch_op.create_index('ix_unit_month_stats_grid', ['grid_code', 'month'], unique=False)


def downgrade() -> None:
    op.drop_table('unit_month_stats')
    op.drop_table('unit_day_stats')
    with op.batch_alter_table('case_facts', schema=None) as batch_op:
        batch_op.drop_column('grid_code')
