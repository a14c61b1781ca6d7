"""Exports on real SQLite and PostgreSQL: one streamed query however many batches it fetches, and lines
exactly as the case summary and the masked contact show them (the per-row work was cut, not changed)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import select

from gridflow.adapters.orm import CaseRow
from gridflow.engine.case import Actor
from gridflow.service.auth import Caller
from gridflow.service.case_view import summarize
from gridflow.service.exports import EXPORT_COLUMNS, export_rows, safe_cell
from gridflow.service.lists import CaseFilter
from gridflow.service.masking import contact_for
from gridflow.service.scopes import scope_of
from tests.integration.helpers import DISPATCHER, HOUSING, act, report

OPERATOR = Actor("op-1", "hotline_operator", "370602")
URBAN = Actor("dh-urban", "department_handler", "dept-urban")
STREET = Caller("sd-1", "street_dispatcher", "370602001")
SUPERVISOR = Caller("sv-1", "supervisor", "370602")


def _mixed_cases(app, clock) -> None:
    """Open, in handling, overdue, suspended, confidential, with formulas and contacts in its text, closed."""
    svc = app.services
    report(svc, title="=HYPERLINK(\"http://x\")",
           description="来电人王五 13812345678 身份证370602199001011234", reporter_name="李明",
           reporter_phone="13812345678", address="海港路12号3单元501室")
    report(svc, title="-2+3", confidential=True, reporter_name="赵六", reporter_phone="13900001111")
    handled = report(svc, title="楼道漏水").number
    act(svc, handled, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(svc, handled, "acknowledge", HOUSING)
    paused = report(svc, title="暂缓").number
    act(svc, paused, "dispatch", DISPATCHER, {"department": "dept-housing"})
    act(svc, paused, "acknowledge", HOUSING)
    act(svc, paused, "request_suspension", HOUSING,
        {"reason_code": "resident_unavailable", "reason": "等待产权人回国", "duration": "5wd"})
    act(svc, paused, "approve_suspension", DISPATCHER)
    closed = report(svc, "hotline_request", reporter=OPERATOR, title="@SUM(1)").number
    for action, actor, payload in [("dispatch", OPERATOR, {"unit": "dept-urban", "urgency": "general"}),
                                   ("sign_for", URBAN, {}), ("contact_requester", URBAN, {"reached": True}),
                                   ("reply", URBAN, {"result": "已处理"}),
                                   ("call_back", OPERATOR, {"reached": True}),
                                   ("rate", OPERATOR, {"rating": "satisfied"})]:
        act(svc, closed, action, actor, payload)
    late = report(svc, title="逾期").number
    act(svc, late, "dispatch", DISPATCHER, {"department": "dept-housing"})
    clock.advance(timedelta(days=3))
    app.runner.run_due()
    report(svc, title="刚报")


def _line_as_summarized(svc, caller, row, now) -> dict:
    """An export line as the case summary and the masked contact give it (how exports were built)."""
    c = contact_for(caller, row, export=True)
    s = summarize(svc, caller, row, now, export=True)
    record = {
        "number": s.number, "workflow": s.workflow, "state": s.state, "state_label": s.state_label,
        "stage": s.stage, "category": s.category, "title": s.title, "description": c.description,
        "address": c.address or "", "lat": c.lat, "lon": c.lon, "reporter_name": c.name or "",
        "reporter_phone": c.phone or "", "holder_unit": s.holder_unit or "",
        "escalation_level": s.escalation_level, "supervised": s.supervised,
        "opened_at": s.opened_at.isoformat(), "closed_at": s.closed_at.isoformat() if s.closed_at else "",
        "outcome": s.outcome or "", "rating": row.rating or "", "breach_count": s.breach_count,
        "light": s.sla.light}
    return {k: safe_cell(record[k]) for k in EXPORT_COLUMNS}


def test_an_export_line_is_what_the_summary_and_the_masked_contact_of_its_case_show(app, clock):
    _mixed_cases(app, clock)
    svc = app.services
    for caller in (STREET, SUPERVISOR):
        with svc.uow(write=False) as uow:
            rows = list(uow.session.exec(select(CaseRow).where(scope_of(svc, caller).sql())
                                         .order_by(CaseRow.id)))
        expected = [_line_as_summarized(svc, caller, r, clock.now()) for r in rows]
        lights = {line["light"] for line in expected}
        assert {"suspended", "red", "green"} <= lights, lights  # the mix is mixed
        assert list(export_rows(svc, caller, CaseFilter(), batch=3)) == expected
    assert "none" in lights and len(expected) >= 7  # the supervisor's: the closed hotline case too


def test_an_export_of_many_batches_is_one_query_on_a_server_side_cursor(app, clock):
    _mixed_cases(app, clock)
    svc = app.services
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM cases" in statement:
            statements.append(statement)

    engine = svc.db.read_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        lines = list(export_rows(svc, SUPERVISOR, CaseFilter(), batch=2))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    with svc.db.read_engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(CaseRow.__table__)).scalar_one()
    assert len(lines) == stored >= 7  # four batches and more
    assert len(statements) == 1, statements
