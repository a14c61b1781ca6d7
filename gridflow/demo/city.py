"""``gridflow demo``: a small city simulated for N days, through the same service layer as the API.

Cases arrive in the demo district's grids (more by day than by night); each
party then acts after a delay drawn in its working time — community
dispatchers triage (handle locally, reject, merge, refer to the street or
dispatch, now and then with a co-handling department, and recall a
misdirected dispatch), departments sign for, ask for extensions and
suspensions, return misrouted cases and reply, co-handlers sign for and answer
their parts, residents rate, grid workers verify. Some of them are late on
purpose, so deadlines warn, breach, are reminded (催办) and escalate; a street
re-dispatches or takes over what reaches it, supervisors issue supervision
orders and the units answer them. Time is a :class:`ManualClock` moved in small steps; the inline timer
runner fires whatever fell due at each step, exactly as the thread runner would.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from ..engine.calendar import LOCAL_ZONE as LOCAL
from ..engine.case import Actor
from ..engine.clock import ManualClock
from ..engine.errors import GridflowError
from ..service.actions import TakeAction, take_action
from ..service.auth import Caller
from ..service.context import Change, Services
from ..service.intake import ReportCase, report_case
from ..service.stats import Counts, SlaReport, event_counts, sla_stats
from . import care
from .seed import COMMUNITIES, grid_center

#: A Monday in an ordinary fortnight (no public holiday), 08:00 in Yantai.
DEFAULT_START = datetime(2026, 11, 2, 8, 0, tzinfo=LOCAL).astimezone(timezone.utc)
HOUR = 3600.0

#: (category code from the shipped event catalogue, what residents report, the department it belongs to)
CATEGORIES = [
    ("C0101", "井盖破损", "dept-urban"), ("C0102", "路灯不亮", "dept-urban"),
    ("E0501", "占道经营", "dept-urban"), ("E0102", "垃圾堆放", "dept-urban"),
    ("C0501", "楼道漏水", "dept-housing"), ("C0502", "电梯故障", "dept-housing"),
    ("C0103", "供水中断", "dept-water"), ("G0101", "邻里纠纷", "dept-justice"),
    ("G0401", "独居老人需帮扶", "dept-civil"), ("G0501", "消防通道堵塞", "dept-emergency"),
    ("E0504", "噪音扰民", "dept-police"),
]
DEPARTMENTS = sorted({d for _, _, d in CATEGORIES})
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林罗高"
ROADS = ['海港路', '胜利路', '东山路', '南山路']
GIVEN = ["芳", "伟", "娜", "敏", "静", "强", "磊", "洋", "艳", "军", "杰", "娟", "涛", "明", "超", "霞"]

#: What each stage of the loop looks like in the history: (stage, label, event types, actions).
STAGES = [
    ("report", "网格上报 Report", ("CaseReported",), ()),
    ("triage", "社区研判 Triage", (), ("dispatch", "handle_locally", "reject", "merge", "refer_to_street")),
    ("response", "部门响应 Department response", (),
     ("acknowledge", "reply", "request_extension", "approve_extension", "deny_extension",
      "request_suspension", "approve_suspension", "deny_suspension", "resume", "resume_at_suspension_limit",
      "return_case", "uphold_dispatch", "accept_return", "park")),
    ("feedback", "居民评价 Resident feedback", (), ("rate", "rate_by_default")),
    ("review", "核查结案 Review", (), ("verify_pass", "verify_fail")),
    ("escalation", "超期升级 Deadlines & escalation",
     ("DeadlineWarned", "DeadlineBreached", "CaseEscalated", "CaseSupervised"), ()),
    ("co_handling", "主办/协办 Lead and co-handling", ("CoHandlingOpened", "CoHandlingClosed"),
     ("sign_part", "answer_part", "close_part", "consult")),
    ("upper", "上级处置 Upper levels", (), ("recall", "reassign", "take_over", "reply_taken_over")),
    ("supervision", "督办催办 Supervision orders and reminders",
     ("SupervisionOrderIssued", "SupervisionOrderAnswered", "ReminderIssued", "CriticismNoticeIssued"),
     ("supervise", "reply_supervision_order")),
]


@dataclass(frozen=True)
class DemoConfig:
    days: int = 10
    cases_per_day: float = 20.0
    seed: int = 7
    start: datetime = DEFAULT_START
    step: timedelta = timedelta(minutes=15)
    #: seed the care register, and close the month at the end to show the visits missed
    care: bool = True


@dataclass
class DemoResult:
    config: DemoConfig
    cases: int = 0
    actions: int = 0
    refused: int = 0
    timers_fired: int = 0
    escalations: int = 0
    escalated_cases: list[str] = field(default_factory=list)
    stats: SlaReport | None = None
    counts: Counts = field(default_factory=Counts)
    #: the care register's visit rate of the simulated month, once the month is closed (demo/care.py)
    care: dict[str, Any] | None = None
    #: where the simulation stopped (closing the care month moves the clock on afterwards)
    simulated_until: datetime | None = None

    def coverage(self) -> list[tuple[str, str, dict[str, int]]]:
        """Per stage of the loop: what happened in it and how often."""
        out = []
        for stage, label, types, actions in STAGES:
            seen = {t: self.counts.by_type.get(t, 0) for t in types}
            seen.update({a: self.counts.by_action.get(a, 0) for a in actions})
            out.append((stage, label, {k: v for k, v in seen.items() if v}))
        return out

    @property
    def complete(self) -> bool:
        """Every stage happened, and at least one case was escalated."""
        return all(seen for _, _, seen in self.coverage()) and self.escalations > 0


@dataclass(order=True)
class _Step:
    at: datetime
    seq: int
    number: str = field(compare=False)
    action: str = field(compare=False)
    actor: Actor = field(compare=False)
    payload: dict[str, Any] = field(compare=False, default_factory=dict)


class _City:
    def __init__(self, svc: Services, clock: ManualClock, runner: Any, config: DemoConfig) -> None:
        self.svc = svc
        self.clock = clock
        self.runner = runner
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.cal = svc.catalog.calendars.get("cn")
        self.agenda: list[_Step] = []
        self.seq = 0
        self.cases: dict[str, dict[str, Any]] = {}
        self.result = DemoResult(config)
        self.grids = [f"{c}{g:02d}" for cs in COMMUNITIES.values() for c, _ in cs for g in (1, 2, 3)]

    # --- scheduling ------------------------------------------------------------------------------

    def later(self, number: str, action: str, actor: Actor, payload: dict[str, Any] | None = None, *,
              work_h: float | None = None, hours: float | None = None) -> None:
        """Plan an action after ``work_h`` working hours (people at their desks) or ``hours`` of clock time.
        """
        now = self.clock.now()
        at = self.cal.add(now, work_h * HOUR) if work_h is not None else now + timedelta(hours=hours or 0)
        self.seq += 1
        heapq.heappush(self.agenda, _Step(at, self.seq, number, action, actor, payload or {}))

    def pick(self, *weighted: tuple[float, Any]) -> Any:
        x = self.rng.random() * sum(w for w, _ in weighted)
        for w, value in weighted:
            x -= w
            if x <= 0:
                return value
        return weighted[-1][1]

    def delay(self, usual: tuple[float, float], slow: tuple[float, float], late: tuple[float, float],
              p_slow: float, p_late: float) -> float:
        band = self.pick((1 - p_slow - p_late, usual), (p_slow, slow), (p_late, late))
        return self.rng.uniform(*band)

    # --- the people ------------------------------------------------------------------------------

    def arrive(self) -> None:
        grid = self.rng.choice(self.grids)
        category, title, department = self.rng.choice(CATEGORIES)
        by_resident = self.rng.random() < 0.4
        name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)
        phone = f"13{self.rng.randint(0, 9)}{self.rng.randint(10_000_000, 99_999_999)}"
        reporter = (Actor(f"resident-{self.rng.randint(1000, 9999)}", "resident", grid) if by_resident
                    else Actor(f"gw-{grid}", "grid_worker", grid))
        lat, lon = grid_center(grid)
        cmd = ReportCase(workflow="grid_event", reporter=reporter, category=category, title=title,
                         description=f"{title}，请尽快处理。联系人{name}，电话{phone}", unit=grid,
                         lat=lat, lon=lon,
                         address=f"{self.rng.choice(ROADS)}{self.rng.randint(1, 120)}号",
                         reporter_name=name, reporter_phone=phone, channel="app" if by_resident else "grid")
        res = report_case(self.svc, cmd)
        community = grid[:-2]
        self.cases[res.number] = {"grid": grid, "community": community, "street": community[:-3],
                                  "department": department, "reporter": reporter, "returned": False}
        self.result.cases += 1
        self.plan(res.number, res.state)

    def plan(self, number: str, state: str) -> None:
        c = self.cases[number]
        community = Actor(f"cd-{c['community']}", "community_dispatcher", c["community"])
        street = Actor(f"sd-{c['street']}", "street_dispatcher", c["street"])
        dept = Actor(f"dh-{c['department']}", "department_handler", c["department"])
        grid_worker = Actor(f"gw-{c['grid']}", "grid_worker", c["grid"])
        triage_h = self.delay((0.2, 2.0), (2.0, 3.8), (4.5, 9.0), 0.15, 0.08)
        if state == "reported":
            self.triage(number, c, community, triage_h)
        elif state == "street_triage":
            choice = self.pick((0.85, "dispatch"), (0.15, "handle_locally"))
            payload = ({"department": self.department(c)} if choice == "dispatch"
                       else {"result": "街道协调办结"})
            self.later(number, choice, street, payload, work_h=triage_h)
        elif state == "dispatched":
            if not c["returned"] and not c.get("was_recalled") and self.rng.random() < 0.05:
                # 派错部门: the community recalls it before the department signs for it, and re-dispatches
                c["recalled"] = c["was_recalled"] = True
                self.later(number, "recall", community, {"reason": "派错部门，撤回改派"}, work_h=0.1)
            elif not c["returned"] and self.rng.random() < 0.06:
                c["returned"] = True
                self.later(number, "return_case", dept,
                           {"reason_code": "not_our_duty", "reason": "非本部门职责，请重新派遣"}, work_h=1.0)
            else:
                self.later(number, "acknowledge", dept,
                           work_h=self.delay((0.3, 4.0), (4.0, 7.5), (9.0, 20.0), 0.12, 0.1))
        elif state == "handling":
            roll = self.rng.random()
            if roll < 0.08 and not c.get("extended"):
                c["extended"] = True
                self.later(number, "request_extension", dept, {"duration": "1wd", "reason": "需采购配件"},
                           work_h=3.0)
                decision = "approve_extension" if self.rng.random() < 0.8 else "deny_extension"
                self.later(number, decision, community,
                           {} if decision == "approve_extension" else {"reason": "可先行临时处置"},
                           work_h=4.0)
                self.later(number, "reply", dept, {"result": "配件到货后已修复"}, work_h=18.0)
            elif roll < 0.12 and not c.get("suspended"):
                c["suspended"] = True
                self.later(number, "request_suspension", dept,  # 挂起 needs the community's approval
                           {"reason_code": "resident_unavailable", "reason": "业主外出，无法入户",
                            "duration": "5wd"}, work_h=2.0)
                self.later(number, "approve_suspension", community, work_h=4.0)
            else:
                self.later(number, "reply", dept, {"result": "已处理完毕"},
                           work_h=self.delay((2.0, 12.0), (12.0, 15.5), (17.0, 30.0), 0.15, 0.12))
        elif state == "taken_over":
            self.later(number, "reply_taken_over", street, {"result": "街道协调相关部门已办结"},
                       work_h=self.delay((2.0, 10.0), (10.0, 16.0), (20.0, 30.0), 0.1, 0.05))
        elif state == "suspended":
            if self.rng.random() < 0.15:
                self.later(number, "park", street, {"reason": "需纳入明年老旧小区改造计划"}, hours=30)
            else:
                self.later(number, "resume", dept, hours=self.rng.uniform(24, 72))
        elif state == "awaiting_feedback":
            rater = c["reporter"] if c["reporter"].role == "resident" else grid_worker
            rating = self.pick((0.70, "satisfied"), (0.15, "basically_satisfied"), (0.08, "dissatisfied"),
                               (0.07, None))
            if rating is not None:  # no answer: the rating deadline rates by default
                self.later(number, "rate", rater, {"rating": rating}, hours=self.rng.uniform(1, 30))
        elif state == "reviewing":
            ok = self.rng.random() < 0.92
            self.later(number, "verify_pass" if ok else "verify_fail", grid_worker,
                       {} if ok else {"reason": "现场复核仍未修复"},
                       work_h=self.delay((1.0, 8.0), (8.0, 14.0), (17.0, 24.0), 0.1, 0.05))

    def triage(self, number: str, c: dict[str, Any], community: Actor, triage_h: float) -> None:
        if c.pop("recalled", False):  # 撤回: re-dispatched to the right department
            self.later(number, "dispatch", community, {"department": c["department"]}, work_h=0.2)
            return
        twin = None
        choice = self.pick((0.08, "handle_locally"), (0.05, "reject"), (0.05, "merge"),
                           (0.0 if c["returned"] else 0.08, "refer_to_street"), (0.74, "dispatch"))
        if choice == "merge":
            twin = next((n for n, o in reversed(self.cases.items()) if n != number and
                         o["community"] == c["community"]), None)
            choice = "dispatch" if twin is None else choice
        payload = {"handle_locally": {"result": "社区网格员已现场处理"},
                   "reject": {"reason": "不属于受理范围"},
                   "refer_to_street": {"reason": "涉及多个社区，需街道协调"},
                   "merge": {"duplicate_of": twin},
                   "dispatch": self.dispatch_payload(c)}[choice]
        self.later(number, choice, community, payload, work_h=triage_h)

    def department(self, c: dict[str, Any]) -> str:
        return c["department"] if not c["returned"] else self.rng.choice(["dept-urban", "dept-housing"])

    def dispatch_payload(self, c: dict[str, Any]) -> dict[str, Any]:
        """A dispatch to the lead department, now and then with a co-handling one (主办/协办)."""
        lead = self.department(c)
        if self.rng.random() >= 0.15:
            return {"department": lead}
        helper = self.rng.choice([d for d in DEPARTMENTS if d != lead])
        c.setdefault("parts", []).append(helper)
        return {"department": lead, "co_handlers": [helper]}

    def co_handle(self, number: str, unit: str) -> None:
        """A co-handling department signs for its part and answers it; one in ten never does, and the
        community closes the part so that the lead may reply."""
        c = self.cases[number]
        co = Actor(f"dh-{unit}", "department_handler", unit)
        if self.rng.random() < 0.1:
            self.later(number, "close_part", Actor(f"cd-{c['community']}", "community_dispatcher",
                                                   c["community"]),
                       {"unit": unit, "reason": "协办单位未响应，由主办单位一并处理"}, work_h=6.0)
            return
        self.later(number, "sign_part", co,
                   work_h=self.delay((0.2, 3.0), (3.0, 7.0), (8.0, 12.0), 0.1, 0.05))
        self.later(number, "answer_part", co, {"answer": "已配合现场处置"},
                   work_h=self.delay((4.0, 10.0), (10.0, 20.0), (22.0, 30.0), 0.1, 0.05))
        if self.rng.random() < 0.3:
            lead = Actor(f"dh-{c['department']}", "department_handler", c["department"])
            self.later(number, "consult", lead, {"participants": [c["department"], unit],
                                                 "summary": "现场会商，明确分工"}, work_h=2.0)

    def answer_order(self, number: str, order: str, unit: str | None) -> None:
        """The unit a supervision order is addressed to answers it, mostly within its limit."""
        info = self.svc.units.get(unit)
        if info is None:
            return
        role = {"department": "department_handler", "community": "community_dispatcher",
                "street": "street_dispatcher"}.get(info.kind)
        if role is None:
            return
        self.later(number, "reply_supervision_order", Actor(f"{role[:2]}-{unit}", role, unit),
                   {"order": order, "reply": "已按督办要求加快办理"},
                   work_h=self.delay((1.0, 8.0), (8.0, 20.0), (24.0, 40.0), 0.15, 0.1))

    def upper_level(self, number: str, level: str, unit: str | None) -> None:
        """A street receiving an unacknowledged case re-dispatches it (改派) or takes it over (提级办理)."""
        c = self.cases[number]
        if level != "street" or unit is None or c.get("upper"):
            return
        c["upper"] = True
        street = Actor(f"sd-{unit}", "street_dispatcher", unit)
        if self.rng.random() < 0.7:
            c["returned"] = True  # the street picks the department anew
            self.later(number, "reassign", street, {"department": self.department(c),
                                                    "reason": "部门超期未签收，街道改派"}, work_h=1.0)
        else:
            self.later(number, "take_over", street, {"reason": "涉及多部门，街道提级办理"}, work_h=1.0)

    def supervise(self, number: str) -> None:
        self.later(number, "supervise", Actor("sv-district", "supervisor", "370602"),
                   {"level": "key", "instructions": "已超期，请加快办理并反馈"}, hours=0.5)

    # --- the run ---------------------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Timer firings move cases too (rate by default) and escalate them; people react."""
        if change.number not in self.cases:
            return
        types = [e["type"] for e in change.events]
        if "CaseEscalated" in types:
            self.result.escalations += types.count("CaseEscalated")
            if change.number not in self.result.escalated_cases:
                self.result.escalated_cases.append(change.number)
            levels = [e["data"].get("to_level") for e in change.events if e["type"] == "CaseEscalated"]
            if "district" in levels:
                self.supervise(change.number)
            if change.state == "dispatched":
                for e in change.events:
                    if e["type"] == "EscalationRouted":
                        self.upper_level(change.number, e["data"].get("level"), e["data"].get("unit"))
        for e in change.events:
            if e["type"] == "SupervisionOrderIssued":
                self.answer_order(change.number, e["data"]["order"], e["data"].get("unit"))
            elif e["type"] == "CoHandlingOpened":
                self.co_handle(change.number, e["data"]["unit"])
        if change.source == "timer" and any(e["type"] == "ActionTaken" for e in change.events):
            self.plan(change.number, change.state)

    def act(self, step: _Step) -> None:
        try:
            res = take_action(self.svc, TakeAction(step.number, step.action, step.actor, step.payload))
        except GridflowError as exc:
            c = self.cases.get(step.number, {})
            if step.action == "reply" and exc.code == "guard_failed" and c.get("reply_retries", 0) < 8:
                # the co-handlers have not all answered yet: the lead replies once they have
                c["reply_retries"] = c.get("reply_retries", 0) + 1
                self.later(step.number, step.action, step.actor, step.payload, work_h=4.0)
                return
            self.result.refused += 1  # the case moved on meanwhile (a timer, another party): nothing to do
            return
        self.result.actions += 1
        if step.action not in ("request_extension", "approve_extension", "deny_extension",
                               "request_suspension", "supervise", "reply_supervision_order", "sign_part",
                               "answer_part", "close_part", "consult"):
            self.plan(step.number, res.state)

    def run(self, progress: Callable[[int, int], None] | None = None) -> DemoResult:
        start = self.clock.now()
        end = start + timedelta(days=self.cfg.days)
        steps = int((end - start) / self.cfg.step)
        per_step = self.cfg.cases_per_day / (24 * HOUR / self.cfg.step.total_seconds())
        if self.cfg.care:
            care.seed_register(self.svc)
        self.svc.listeners.append(self.on_change)
        try:
            for i in range(steps):
                now = self.clock.now()
                hour = now.astimezone(LOCAL).hour
                weight = 2.0 if 8 <= hour < 18 else 0.6 if 6 <= hour < 22 else 0.1
                for _ in range(self._poisson(per_step * weight / 1.2)):
                    self.arrive()
                while self.agenda and self.agenda[0].at <= now:
                    self.act(heapq.heappop(self.agenda))
                self.clock.advance(self.cfg.step)
                self.result.timers_fired += sum(1 for o in self.runner.run_due() if o.status == "fired")
                if progress is not None:
                    progress(i + 1, steps)
        finally:
            self.svc.listeners.remove(self.on_change)
        self.result.stats = sla_stats(self.svc, Caller("demo", "admin"))
        self.result.counts = event_counts(self.svc)
        self.result.simulated_until = self.clock.now()
        if self.cfg.care:  # after the city's figures: closing the month moves the clock on
            self.result.care = care.close_month(self.svc, self.clock, self.runner)
        return self.result

    def _poisson(self, lam: float) -> int:
        # Knuth's method: fine for the small rates of one step.
        limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1


def run_demo(svc: Services, clock: ManualClock, runner: Any, config: DemoConfig = DemoConfig(),
             progress: Callable[[int, int], None] | None = None) -> DemoResult:
    """Simulate ``config.days`` days of the demo district on ``svc`` (seeded with the demo organisation)."""
    return _City(svc, clock, runner, config).run(progress)
