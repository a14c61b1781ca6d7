"""Random runs of the shipped workflows through the service layer (SQLite), then every figure of
/stats/sla recomputed by brute force from the history events alone and compared.

The brute force below is deliberately a second, simple implementation of docs/three-rates.md: it walks
each case's whole history once, in plain dictionaries, with its own table of action kinds. Whatever the
facts table holds must agree with it, for the whole history and for any window of days; and rebuilding
the facts table from history must change nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gridflow.engine.case import Actor
from gridflow.engine.clock import ManualClock
from gridflow.engine.errors import GridflowError
from gridflow.service.actions import TakeAction, take_action
from gridflow.service.auth import Caller
from gridflow.service.intake import ReportCase, report_case
from gridflow.service.stats import FIELDS, rebuild_facts, sla_stats
from tests.conftest import START, _copy_template

LOCAL = ZoneInfo("Asia/Shanghai")
GRID, COMMUNITY, STREET, DISTRICT = "37060200100101", "370602001001", "370602001", "370602"
DEPARTMENTS = ["dept-housing", "dept-urban", "dept-water"]
WORKFLOWS = ["grid_event", "hotline_request", "dispute_mediation", "emergency_incident", "special_care_visit"]
ROLE_UNIT = {"grid_worker": GRID, "resident": None, "community_dispatcher": COMMUNITY, "mediator": COMMUNITY,
             "street_dispatcher": STREET, "district_dispatcher": DISTRICT, "supervisor": DISTRICT,
             "hotline_operator": DISTRICT, "disaster_officer": COMMUNITY}
TEXT = {"string": "x", "text": "说明", "integer": 1, "number": 1.0, "boolean": True, "duration": "4wh",
        "datetime": "2026-11-20T09:00:00+08:00"}

#: The test's own table: shipped action name -> kind (as the workflows will declare them).
KINDS = {
    "verify_pass": "review_pass", "call_back": "other",
    "dispatch": "dispatch", "assign_department": "dispatch", "refer_to_street": "refer_up",
    "hand_up": "refer_up", "escalate_response": "refer_up", "acknowledge": "sign_for", "sign_for": "sign_for",
    "contact_requester": "contact", "respond": "contact", "take_over": "take_over", "reply": "reply",
    "report_final": "reply", "reach_agreement": "reply", "handle_locally": "triage_local",
    "answer_directly": "triage_local", "accept": "triage_local", "return_case": "return", "rate": "rate",
    "rate_by_default": "rate_default", "close_unrated": "rate_default", "order_rework": "rework",
    "report_default": "rework", "verify_fail": "review_fail", "approve_extension": "extension_approval",
    "suspend": "suspension_approval",
}
RESPONSE = {"sign_for", "co_sign_for", "contact", "reply", "take_over"}
#: what moves a case along its loop (the runs pick these most of the time)
FORWARD = ["dispatch", "sign_for", "contact", "reply", "rate", "review_pass", "rework", "review_fail",
           "return", "triage_local"]


# --- random runs -------------------------------------------------------------------------------

@st.composite
def runs(draw):
    """A few cases: (workflow, steps); a step is ('act', choice seed, unit seed) or ('wait', hours)."""
    cases = []
    for _ in range(draw(st.integers(1, 3))):
        wf = draw(st.sampled_from(WORKFLOWS + ["grid_event", "hotline_request"] * 2))
        steps = draw(st.lists(st.one_of(
            st.tuples(st.just("act"), st.integers(0, 99), st.integers(0, 9)),
            st.tuples(st.just("wait"), st.sampled_from([1, 3, 9, 30]), st.just(0))), min_size=6, max_size=18))
        cases.append((wf, steps))
    return cases


def _payload(act, defn, number: str, unit_seed: int) -> dict:
    out = {}
    for spec in act.fields:
        if not spec.required and spec.type not in ("choice", "unit", "units"):
            continue
        if spec.type == "choice":
            if spec.required or unit_seed % 2:
                out[spec.name] = spec.choices[unit_seed % len(spec.choices)]
        elif spec.type == "unit":
            out[spec.name] = DEPARTMENTS[unit_seed % len(DEPARTMENTS)]
        elif spec.type == "units":  # co-handlers (主办/协办), participants of a consultation
            if spec.required or unit_seed % 3 == 0:
                out[spec.name] = [DEPARTMENTS[(unit_seed + 1) % len(DEPARTMENTS)]]
        elif spec.type == "case":
            out[spec.name] = "GF-2026-999999" if number != "GF-2026-999999" else "GF-2026-000001"
        else:
            out[spec.name] = TEXT[spec.type]
    return out


def _step(svc, number: str, seed: int, unit_seed: int) -> None:
    with svc.uow(write=False) as uow:
        snap = uow.cases.load(number).snapshot
    defn = svc.catalog.get(snap.workflow, snap.version)
    acts = [a for a in defn.actions_from(snap.state) if any(r != "system" for r in a.roles)]
    if not acts:
        return
    forward = sorted((a for a in acts if KINDS.get(a.name) in FORWARD),
                     key=lambda a: FORWARD.index(KINDS[a.name]))
    act = forward[seed % len(forward)] if forward and seed < 70 else acts[seed % len(acts)]
    roles = [r for r in act.roles if r not in ("system", "resident")] or ["resident"]
    role = roles[seed // 7 % len(roles)]
    unit = ROLE_UNIT.get(role)
    if role in ("department_handler", "street_dispatcher") and defn.states[snap.state].stage == "response":
        # mostly the unit that holds it, now and then another one
        unit = snap.holder_unit if unit_seed < 8 else DEPARTMENTS[unit_seed % len(DEPARTMENTS)]
    actor = Actor(f"{role}-1", role, unit)
    try:
        take_action(svc, TakeAction(number, act.name, actor, _payload(act, defn, number, unit_seed)))
    except GridflowError:
        pass  # refused (a guard, a payload): nothing was written


def _play(app, clock, run) -> None:
    svc = app.services
    for wf, steps in run:
        reporter = Actor("op-1", "hotline_operator", DISTRICT) if wf == "hotline_request" else \
            Actor("gw-1", "grid_worker", GRID)
        try:
            number = report_case(svc, ReportCase(wf, reporter, category="C0101", description="x",
                                                 unit=GRID)).number
        except GridflowError:
            continue
        for kind, a, b in steps:
            if kind == "wait":
                clock.advance(timedelta(hours=a))
                app.runner.run_due()
            else:
                _step(svc, number, a, b)


# --- the brute force ---------------------------------------------------------------------------

def _day(at: datetime) -> date:
    return at.astimezone(LOCAL).date()


def _kind(data: dict) -> str:
    return data.get("kind") or KINDS.get(data.get("action"), "other")


def _parse(text):
    return datetime.fromisoformat(text) if text else None


def brute_force(svc) -> list[tuple[str | None, str, date]]:
    """Every (unit, counter, day) increment, walking each case's history from its first entry."""
    out: list[tuple[str | None, str, date]] = []
    with svc.uow(write=False) as uow:
        cases = uow.session.execute(sa.text(
            "select id, workflow, workflow_version, holder_unit from cases order by id")).all()
        for cid, wf, version, holder in cases:
            defn = svc.catalog.get(wf, version)
            response_states = {n for n, s in defn.states.items() if s.stage == "response"}
            events = uow.cases.events(cid)
            out += _walk(events, holder, response_states)
    return out


def _walk(events, holder_now, response_states):  # noqa: C901 - one plain pass, on purpose
    out = []
    first_assign = next((e for e in events if e.type == "CaseAssigned"), None)
    lead = first_assign.data["from_unit"] if first_assign else holder_now
    received: dict[str, date] = {}
    let_go: dict[str, str] = {}
    receipts: list[dict] = []  # {unit, role, day, due, done}
    replier, rated = None, False
    last_kind, last_unit = None, None

    def add(unit, name, day):
        out.append((unit, name, day))

    def answer(r, at, on_time=None):
        r["done"] = True
        ok = on_time if on_time is not None else (r["due"] is None or at <= r["due"])
        add(r["unit"], "responded", r["day"])
        add(r["unit"], "responded_on_time" if ok else "responded_late", r["day"])

    def unanswered(r, how):
        r["done"] = True
        add(r["unit"], {"returned": "unanswered_returned", "withdrawn": "unanswered_withdrawn",
                        "passed_on": "unanswered_passed_on"}[how], r["day"])

    for i, e in enumerate(events):
        d = e.data or {}
        if e.type == "CaseReported":
            received[lead] = _day(e.at)
            add(lead, "received", _day(e.at))
        elif e.type == "ActionTaken":
            k, u = _kind(d), d.get("unit")
            last_kind, last_unit = k, u
            if k in RESPONSE and u:
                for r in receipts:
                    if not r["done"] and r["unit"] == u and r["role"] == "lead":
                        answer(r, e.at)
            if k == "return":
                add(u or lead, "returns", _day(e.at))
            if k in ("reply", "triage_local"):
                replier, rated = lead, False
            if k == "rate":
                rating = (d.get("payload") or {}).get("rating")
                add(replier or lead, "rated", _day(e.at))
                if rating in ("satisfied", "basically_satisfied", "dissatisfied"):
                    add(replier or lead, rating, _day(e.at))
                if rating == "dissatisfied" and d.get("to_state") in response_states:
                    add(lead, "rework_rounds", _day(e.at))
                rated = True
            if k == "rate_default":
                add(replier or lead, "rated_by_default", _day(e.at))
                rated = True
            simple = {"rework": "rework_rounds", "review_fail": "failed_reviews",
                      "extension_approval": "extensions", "suspension_approval": "suspensions"}
            if k in simple:
                add(lead, simple[k], _day(e.at))
        elif e.type == "CaseAssigned":
            frm, to = d.get("from_unit"), d.get("to_unit")
            how = {"return": "returned", "recall": "withdrawn", "reassign": "withdrawn",
                   "take_over": "withdrawn"}.get(last_kind, "passed_on")
            if how == "withdrawn" and last_unit == frm:
                how = "passed_on"
            for r in receipts:
                if not r["done"] and r["unit"] == frm and r["role"] == "lead":
                    unanswered(r, how)
            let_go[frm] = how
            lead = to
            if to not in received:
                received[to] = _day(e.at)
                add(to, "received", _day(e.at))
            if last_kind not in ("return", "recall"):
                dues = []
                for later in events[i + 1:]:
                    if later.type == "ActionTaken":
                        break
                    if later.type == "DeadlineStarted":
                        dues.append(_parse(later.data.get("due_at")))
                r = {"unit": to, "role": "lead", "day": _day(e.at), "due": min(dues) if dues else None,
                     "done": False}
                receipts.append(r)
                add(to, "receipts", r["day"])
                if last_kind in RESPONSE and last_unit == to:
                    answer(r, e.at)
        elif e.type == "CoHandlingOpened":  # a co-handling part: a dispatch of its own, answered by signing
            r = {"unit": d["unit"], "role": "co", "day": _day(e.at),
                 "due": _parse(d.get("sign_due") or d.get("due_at")), "done": False}
            receipts.append(r)
            add(r["unit"], "receipts", r["day"])
        elif e.type in ("CoHandlingSignedFor", "CoHandlingAnswered", "CoHandlingClosed"):
            for r in receipts:
                if not r["done"] and r["unit"] == d.get("unit") and r["role"] == "co":
                    if e.type == "CoHandlingClosed":
                        unanswered(r, "withdrawn")
                    else:
                        answer(r, e.at, d["on_time"] if isinstance(d.get("on_time"), bool) else None)
        elif e.type == "CaseClosed":
            outcome = d.get("outcome")
            for unit, day in received.items():
                if unit == lead:
                    name = outcome if outcome in ("resolved", "merged", "rejected") else "closed_other"
                    add(unit, name, day)
                    add(unit, "closed", day)
                else:
                    add(unit, {"returned": "returned_unresolved", "withdrawn": "withdrawn",
                               "passed_on": "passed_on"}[let_go.get(unit, "passed_on")], day)
            if outcome == "resolved" and replier is not None and not rated:
                add(replier, "rating_missing", _day(e.at))
            for r in receipts:
                if not r["done"]:
                    unanswered(r, "withdrawn")
            received = {}  # every reception has its outcome now
        else:
            counted = {"DeadlineBreached": "breaches", "CaseEscalated": "escalations",
                       "CaseSupervised": "supervised", "ImproperReturnRecorded": "improper_returns",
                       "SupervisionOrderIssued": "supervision_orders", "ReminderIssued": "reminders",
                       "CriticismNoticeIssued": "criticism_notices",
                       "SupervisionOrderOverdue": "supervision_overdue"}
            who = d.get("unit") or lead
            if e.type in counted:
                add(who, counted[e.type], _day(e.at))
            if e.type == "SupervisionOrderIssued" and d.get("level") == "key":
                add(who, "key_supervision_orders", _day(e.at))
            if e.type == "SupervisionOrderAnswered":
                add(who, "supervision_answered_on_time" if d.get("on_time") else "supervision_answered_late",
                    _day(e.at))
    for r in receipts:
        if not r["done"]:
            add(r["unit"], "awaiting_response", r["day"])
    for unit, day in received.items():
        add(unit, "open", day)
    return out


def _expected(increments, lo: date | None, hi: date | None) -> dict[str | None, Counter]:
    per: dict[str | None, Counter] = defaultdict(Counter)
    for unit, name, day in increments:
        if (lo is None or day >= lo) and (hi is None or day <= hi):
            per[unit][name] += 1
    return per


def _rate(num, den):
    return round(num / den, 4) if den else None


def _compare(svc, increments, lo, hi) -> None:
    report = sla_stats(svc, Caller("admin", "admin"), date_from=lo, date_to=hi)
    expected = _expected(increments, lo, hi)
    got = {u.unit: u for u in report.units}
    assert {k for k, v in expected.items() if +v} <= set(got) | {None}
    for unit, want in expected.items():
        u = got.get(unit)
        if u is None:
            assert not +want, (unit, want)
            continue
        for name in FIELDS:
            assert getattr(u, name) == want[name], (unit, name, getattr(u, name), want[name])
        assert u.response_rate == _rate(want["responded_on_time"],
                                        want["receipts"] - want["unanswered_withdrawn"])
        assert u.resolution_rate == _rate(want["resolved"], want["resolved"] + want["closed_other"]
                                          + want["returned_unresolved"])
        assert u.satisfaction_rate == _rate(want["satisfied"] + want["basically_satisfied"], want["rated"])


@pytest.fixture
def fresh_world(sqlite_template, tmp_path_factory):
    """Each example on its own migrated SQLite copy and its own manual clock (runs stay independent)."""
    from gridflow.bootstrap import bootstrap
    from gridflow.settings import Settings

    apps = []

    def make():
        while apps:
            apps.pop().close()
        clock = ManualClock(START)
        url = _copy_template(sqlite_template, tmp_path_factory.mktemp("run"))
        app = bootstrap(Settings(database_url=url, environment="test", seed_demo=True), clock,
                        runner="inline")
        apps.append(app)
        return app, clock

    yield make
    while apps:
        apps.pop().close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(run=runs(), window=st.tuples(st.integers(0, 6), st.integers(0, 6)))
def test_every_figure_equals_a_brute_force_count_over_the_history_events(fresh_world, run, window):
    app, clock = fresh_world()
    _play(app, clock, run)
    svc = app.services
    increments = brute_force(svc)
    for name in sorted({n for _, n, _ in increments}):
        event(f"counts {name}")  # what the runs reached (pytest --hypothesis-show-statistics)
    _compare(svc, increments, None, None)
    start = _day(clock.now()) - timedelta(days=7)
    lo, hi = sorted(start + timedelta(days=w) for w in window)
    _compare(svc, increments, lo, hi)
    # and the facts table rebuilt from history says the same
    rebuild_facts(svc)
    _compare(svc, increments, None, None)
