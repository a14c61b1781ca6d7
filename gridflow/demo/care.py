"""The demo's care register (特殊群体台账): a few people under care in the demo grids, visited in the
first days of the simulated month, and the month closed afterwards so that the missed visits show
(docs/care-visits.md). A client of the service layer like the rest of the demo."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from ..engine.calendar import LOCAL_ZONE as LOCAL
from ..engine.case import Actor
from ..engine.clock import ManualClock
from ..service.actions import TakeAction, take_action
from ..service.auth import Caller
from ..service.care import CareEntry, register, visit_rate
from ..service.context import Services

#: (register id, name, group, grid, phone, address, visited how in the first days — None: not visited)
PEOPLE = (
    ("ZF-0001", "张桂兰", "独居", "37060200100101", "13800000001", "海港路12号3单元501室", "home"),
    ("ZF-0002", "李德明", "失能", "37060200100102", "13800000002", "海港路8号2单元302室", "phone"),
    ("ZF-0003", "王秀英", "空巢", "37060200100201", None, "胜利路3号1单元101室", "video"),
    ("ZF-0004", "赵建国", "特殊困难残疾人", "37060200200101", "13800000004", "东山路21号", "home"),
    ("ZF-0005", "刘小雨", "困境儿童", "37060200200202", None, "幸福街5号4单元602室", None),
)
_REGISTRAR = Actor("demo-register", "admin")


def seed_register(svc: Services) -> dict[str, str]:
    """Register the demo people (idempotent by register id) and record the first days' visits; returns
    register id -> case number."""
    numbers: dict[str, str] = {}
    for rid, name, group, grid, phone, address, how in PEOPLE:
        row, outcome = register(svc, CareEntry(rid, name, group, grid, phone=phone, address=address,
                                               worker=f"gw-{grid}"), _REGISTRAR)
        numbers[rid] = row.case_number
        if how is not None and outcome == "created":
            take_action(svc, TakeAction(row.case_number, "visit", Actor(f"gw-{grid}", "grid_worker", grid),
                                        {"method": how, "condition": "stable", "notes": "身体状况稳定"}))
    return numbers


def close_month(svc: Services, clock: ManualClock, runner: Any) -> dict[str, Any]:
    """Move the clock past the end of the month the simulation ran in (09:00 on the 1st of the next) and
    fire what fell due, as a runner back after a pause would; then the month's visit rate."""
    now = clock.now().astimezone(LOCAL).date()
    month = now.replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    at = datetime.combine(following, time(9, 0), LOCAL)
    if at > clock.now():
        clock.set(at)
        runner.run_due()
    return visit_rate(svc, Caller("demo", "admin"), _label(month))


def _label(month: date) -> str:
    return month.strftime("%Y-%m")
