"""Read-side indexes: worklists and lists that depend on what is open, not on what was ever stored

Worklists read partial indexes over open cases, ``(column, due_at, id) WHERE NOT closed``, one per
column a scope term anchors on; lists read ``(column, id)``; a department's co-handling parts (协办) a
partial index over the few cases that have one. The ``(holder_unit | escalation_unit, closed, …)``
indexes they replace, and the plain ``reporter_id`` index, go.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_OPEN = {"sqlite_where": sa.text("closed = 0"), "postgresql_where": sa.text("NOT closed")}
_CO = {"sqlite_where": sa.text("co_units <> ''"), "postgresql_where": sa.text("co_units <> ''")}
_OPEN_CO = {"sqlite_where": sa.text("closed = 0 AND co_units <> ''"),
            "postgresql_where": sa.text("NOT closed AND co_units <> ''")}
#: name -> column, for the open-case worklist indexes (column, due_at, id)
_OPEN_INDEXES = {"ix_cases_open_holder": "holder_unit", "ix_cases_open_community": "community_code",
                 "ix_cases_open_street": "street_code", "ix_cases_open_district": "district_code",
                 "ix_cases_open_grid": "origin_unit", "ix_cases_open_reporter": "reporter_id"}
#: name -> column, for the list indexes (column, id)
_LIST_INDEXES = {"ix_cases_holder": "holder_unit", "ix_cases_community": "community_code",
                 "ix_cases_street_id": "street_code", "ix_cases_grid": "origin_unit",
                 "ix_cases_reporter": "reporter_id"}
#: The indexes 0001 and 0003 made that the above replace: name -> columns.
_REPLACED = {"ix_cases_worklist": ["holder_unit", "closed", "next_due_at"],
             "ix_cases_escalation_worklist": ["escalation_unit", "closed", "next_due_at"],
             "ix_cases_worklist_due": ["holder_unit", "closed", "due_at"],
             "ix_cases_escalation_due": ["escalation_unit", "closed", "due_at"],
             "ix_cases_reporter_id": ["reporter_id"]}


def upgrade() -> None:
    for name in _REPLACED:
        op.drop_index(name, table_name="cases")
    for name, column in _LIST_INDEXES.items():
        op.create_index(name, "cases", [column, "id"], unique=False)
    for name, column in _OPEN_INDEXES.items():
        op.create_index(name, "cases", [column, "due_at", "id"], unique=False, **_OPEN)
    op.create_index("ix_cases_co_handling", "cases", ["id", "co_units"], unique=False, **_CO)
    op.create_index("ix_cases_open_co_handling", "cases", ["due_at", "id", "co_units"], unique=False, **_OPEN_CO)


def downgrade() -> None:
    op.drop_index("ix_cases_open_co_handling", table_name="cases")
    op.drop_index("ix_cases_co_handling", table_name="cases")
    for name in [*_OPEN_INDEXES, *_LIST_INDEXES]:
        op.drop_index(name, table_name="cases")
    for name, columns in _REPLACED.items():
        op.create_index(name, "cases", columns, unique=False)
