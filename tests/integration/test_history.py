"""History is append-only and hash-chained; tampering behind the service's back is caught."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gridflow.service.audit import verify_all, verify_case
from tests.integration.helpers import HOUSING, act, dispatched_case


def _tamper(db, sql: str, params: dict) -> None:
    """Edit history as an attacker with database access would: first lift the append-only trigger."""
    with db.write_engine.connect() as conn:
        if db.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS case_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS case_events_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE case_events DISABLE TRIGGER case_events_append_only")
        conn.execute(sa.text(sql), params)
        if db.dialect != "sqlite":
            conn.exec_driver_sql("ALTER TABLE case_events ENABLE TRIGGER case_events_append_only")
        conn.commit()


def test_untouched_histories_verify(app):
    numbers = [dispatched_case(app.services) for _ in range(3)]
    act(app.services, numbers[0], "acknowledge", HOUSING)
    reports = list(verify_all(app.services))
    assert [r.ok for r in reports] == [True, True, True]
    assert reports[0].events > reports[1].events


def test_the_database_refuses_to_update_or_delete_history(app):
    number = dispatched_case(app.services)
    with pytest.raises(sa.exc.DatabaseError):
        with app.services.db.write_engine.begin() as conn:
            conn.exec_driver_sql("UPDATE case_events SET actor = 'mallory'")
    with pytest.raises(sa.exc.DatabaseError):
        with app.services.db.write_engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM case_events")
    assert verify_case(app.services, number).ok


def test_an_edited_event_is_caught_and_the_first_broken_link_named(app):
    number = dispatched_case(app.services)
    act(app.services, number, "acknowledge", HOUSING)
    _tamper(app.services.db, "UPDATE case_events SET actor = 'mallory' WHERE seq = 3 AND case_id = "
            "(SELECT id FROM cases WHERE number = :n)", {"n": number})
    report = verify_case(app.services, number)
    assert not report.ok and report.broken_seq == 3 and "edited" in report.reason


def test_a_deleted_last_event_is_caught_by_the_chain_head(app):
    number = dispatched_case(app.services)
    _tamper(app.services.db,
            "DELETE FROM case_events WHERE case_id = (SELECT id FROM cases WHERE number = :n) "
            "AND seq = (SELECT max(seq) FROM case_events "
            "WHERE case_id = (SELECT id FROM cases WHERE number = :n))",
            {"n": number})
    report = verify_case(app.services, number)
    assert not report.ok and "chain head" in report.reason


def test_a_deleted_middle_event_is_caught(app):
    number = dispatched_case(app.services)
    _tamper(app.services.db, "DELETE FROM case_events WHERE seq = 2 AND case_id = "
            "(SELECT id FROM cases WHERE number = :n)", {"n": number})
    report = verify_case(app.services, number)
    assert not report.ok and report.broken_seq == 2
    others = [r for r in verify_all(app.services) if r.number != number]
    assert all(r.ok for r in others)
