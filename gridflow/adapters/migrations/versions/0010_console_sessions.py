"""Console sign-in: users may have a password (argon2 hash); server-side console sessions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 15:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import gridflow.adapters.orm


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255),
                                      nullable=True))
    op.create_table('console_sessions',
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('csrf_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', gridflow.adapters.orm.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_user_id'))
    op.drop_table('console_sessions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_hash')
