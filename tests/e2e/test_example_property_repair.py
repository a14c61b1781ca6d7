"""The example a workflow developer would write: 物业报修 (examples/workflows/property_repair.yaml).

Run through the real service on SQLite and PostgreSQL with a manual clock: nothing sleeps, the clock
is moved past each deadline and the inline timer runner fires what fell due.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gridflow.adapters.codec import snapshot_of
from gridflow.engine.case import Actor
from gridflow.engine.errors import RoleNotAllowed
from gridflow.service.actions import TakeAction, take_action
from gridflow.service.intake import ReportCase, report_case

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
GRID = "37060200100101"
RESIDENT = Actor("res-1", "resident", GRID)
DESK = Actor("cd-1", "community_dispatcher", "370602001001")
TEAM = Actor("dh-housing", "department_handler", "dept-housing")


@pytest.fixture
def svc(make_app, db_url):
    return make_app(db_url, workflows_dir=EXAMPLES).services


@pytest.fixture
def runner(svc, make_app):
    from gridflow.processes.runners import InlineTimerRunner

    return InlineTimerRunner(svc)


def act(svc, number, action, actor, **payload):
    return take_action(svc, TakeAction(number, action, actor, payload))


def case(svc, number):
    with svc.uow(write=False) as uow:
        row = uow.cases.get(number)
        return row, snapshot_of(
            row, svc.catalog.engine(row.workflow, row.workflow_version).definition.escalation.top)


def report(svc) -> str:
    return report_case(svc, ReportCase("property_repair", RESIDENT, category="C0501", title="厨房水管漏水",
                                       unit=GRID, reporter_phone="13812345678")).number


def test_the_example_validates_and_is_offered_beside_the_shipped_workflows(svc):
    defn = svc.catalog.newest("property_repair")
    assert defn.label.zh == "物业报修" and defn.initial == "submitted"
    assert "grid_event" in svc.catalog.names()


def test_a_repair_runs_from_report_to_confirmation(svc, clock):
    number = report(svc)
    assert act(svc, number, "assign", DESK, team="dept-housing").state == "assigned"
    row, _ = case(svc, number)
    assert row.holder_unit == "dept-housing"
    clock.advance(hours=3)
    act(svc, number, "arrive", TEAM)
    act(svc, number, "finish", TEAM, result="更换了三通阀")
    assert act(svc, number, "confirm", RESIDENT, fixed=True).state == "done"
    row, _ = case(svc, number)
    assert row.closed and row.outcome == "resolved" and row.breach_count == 0


def test_an_unvisited_repair_escalates_to_the_street_and_is_supervised(svc, clock, runner):
    number = report(svc)
    act(svc, number, "assign", DESK, team="dept-housing")
    clock.advance(hours=25)  # the visit is due within 24 clock hours, nights and holidays included
    runner.run_due()
    row, _ = case(svc, number)
    assert row.breach_count == 1 and row.supervised
    assert row.escalation_level == 1 and row.escalation_unit == "370602001"


def test_waiting_for_parts_stops_the_repair_clock(svc, clock):
    number = report(svc)
    act(svc, number, "assign", DESK, team="dept-housing")
    act(svc, number, "arrive", TEAM)  # 08:00 on Wednesday 30 September; work starts at 08:30
    (before,) = case(svc, number)[1].deadlines
    clock.advance(hours=2)
    act(svc, number, "wait_for_parts", TEAM, part="三通阀")  # 1.5 working hours used
    clock.advance(days=9)  # the part arrives after the National Day week: none of it counts
    act(svc, number, "parts_arrived", TEAM)
    (repair,) = case(svc, number)[1].deadlines
    calendar = svc.catalog.calendars.get("cn")
    assert repair.timer == "repair" and repair.consumed == 1.5 * 3600 and len(repair.pauses) == 1
    assert repair.due_at == calendar.add(clock.now(), repair.total - repair.consumed)
    assert repair.due_at > before.due_at


def test_a_resident_who_says_not_fixed_sends_it_back_and_silence_confirms(svc, clock, runner):
    number = report(svc)
    act(svc, number, "assign", DESK, team="dept-housing")
    act(svc, number, "arrive", TEAM)
    act(svc, number, "finish", TEAM, result="已修复")
    assert act(svc, number, "confirm", RESIDENT, fixed=False).state == "repairing"
    act(svc, number, "finish", TEAM, result="再次修复")
    clock.advance(days=10)  # two working days without an answer (the National Day week does not count)
    runner.run_due()
    row, snap = case(svc, number)
    assert row.state == "done" and snap.data["confirmed_by_default"] is True


def test_only_the_resident_or_desk_may_cancel(svc):
    number = report(svc)
    with pytest.raises(RoleNotAllowed):
        act(svc, number, "cancel", TEAM, reason="不想修了")
    assert act(svc, number, "cancel", RESIDENT, reason="已自行修好").state == "cancelled"
