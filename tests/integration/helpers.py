"""Small builders for service-level tests."""

from __future__ import annotations

from gridflow.engine.case import Actor
from gridflow.service.actions import TakeAction, take_action
from gridflow.service.intake import ReportCase, report_case

GRID = "37060200100101"
COMMUNITY = "370602001001"
STREET = "370602001"
GRID_WORKER = Actor("gw-1", "grid_worker", GRID)
DISPATCHER = Actor("cd-1", "community_dispatcher", COMMUNITY)
HOUSING = Actor("dh-housing", "department_handler", "dept-housing")


def report(svc, workflow: str = "grid_event", **kw):
    kw.setdefault("description", "路灯不亮")
    kw.setdefault("category", "C0101")
    return report_case(svc, ReportCase(workflow, kw.pop("reporter", GRID_WORKER), **kw))


def act(svc, number: str, action: str, actor: Actor, payload=None, **kw):
    return take_action(svc, TakeAction(number, action, actor, payload or {}, **kw))


def dispatched_case(svc):
    r = report(svc)
    act(svc, r.number, "dispatch", DISPATCHER, {"department": "dept-housing"})
    return r.number


def snapshot(svc, number: str):
    """(case row, events, timers) as stored."""
    with svc.uow(write=False) as uow:
        row = uow.cases.get(number)
        return row, uow.cases.events(row.id), uow.cases.pending_timers(row.id)
