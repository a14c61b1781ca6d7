"""Statistical facts (三率) from hand-built histories: what each kind of history entry counts, for whom,
and in which period (docs/three-rates.md). Events other helpers add (co-handling, supervision orders,
reminders, returns review) are built here by the contract of the common brief."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from gridflow.engine.facts import Fact, derive_facts, intake_unit_of
from gridflow.service.stats import UnitStats, tally

UTC = timezone.utc
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Yantai
COMMUNITY, HOUSING, URBAN, STREET = "370602001001", "dept-housing", "dept-urban", "370602001"
RESPONSE_STATES = frozenset({"dispatched", "handling", "suspended", "signing", "contacting"})


@dataclass(frozen=True)
class E:
    seq: int
    type: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = "x"
    role: str = "x"


class History:
    """Builds a history the way the engine writes it: numbered entries, decision by decision."""

    def __init__(self, workflow: str = "grid_event") -> None:
        self.workflow = workflow
        self.events: list[E] = []
        self.decisions: list[list[E]] = []
        self.now = T0
        self.reported()

    def later(self, **delta) -> "History":
        self.now += timedelta(**delta)
        return self

    def decision(self, *entries: tuple[str, dict[str, Any]]) -> "History":
        batch = [E(len(self.events) + i + 1, t, self.now, d) for i, (t, d) in enumerate(entries)]
        self.events.extend(batch)
        self.decisions.append(batch)
        return self

    def reported(self) -> None:
        self.decision(("CaseReported", {"origin_unit": "37060200100101"}),
                      ("DeadlineStarted", {"due_at": (self.now + timedelta(hours=4)).isoformat()}))

    def act(self, action: str, unit: str | None, *extra: tuple[str, dict[str, Any]], to_state: str = "x",
            kind: str | None = None, **payload) -> "History":
        data: dict[str, Any] = {"action": action, "from_state": "y", "to_state": to_state}
        if unit:
            data["unit"] = unit
        if kind:
            data["kind"] = kind
        if payload:
            data["payload"] = payload
        return self.decision(("ActionTaken", data), *extra)

    def dispatch(self, frm: str, to: str, limit: timedelta = timedelta(hours=8), by: str | None = None,
                 action: str = "dispatch", kind: str | None = None) -> "History":
        return self.act(action, by or frm, ("CaseAssigned", {"from_unit": frm, "to_unit": to}),
                        ("DeadlineStarted", {"due_at": (self.now + limit).isoformat()}),
                        ("DeadlineStarted", {"due_at": (self.now + 3 * limit).isoformat()}),
                        to_state="dispatched", kind=kind)

    def closed(self, outcome: str = "resolved") -> "History":
        return self.decision(("CaseClosed", {"outcome": outcome}))

    def facts(self) -> list[Fact]:
        out: list[Fact] = []
        for batch in self.decisions:
            out += derive_facts(out, batch, workflow=self.workflow, intake_unit=COMMUNITY,
                                response_states=RESPONSE_STATES)
        return out


def figures(facts: list[Fact]) -> dict[str | None, UnitStats]:
    """Per unit, what /stats/sla counts from these facts."""
    counts: dict[str | None, dict[str, int]] = {}
    for f in facts:
        for name in tally(f.kind, f.detail, f.on_time):
            c = counts.setdefault(f.unit, {})
            c[name] = c.get(name, 0) + 1
    return {u: UnitStats(u, u or "", "", c) for u, c in counts.items()}


def test_a_department_that_never_signs_for_has_a_response_rate_of_zero_not_one_hundred():
    h = History().later(hours=1).dispatch(COMMUNITY, HOUSING).later(days=3)
    housing = figures(h.facts())[HOUSING]
    assert housing.receipts == 1 and housing.awaiting_response == 1 and housing.response_rate == 0.0
    assert figures(h.facts())[COMMUNITY].receipts == 0  # the community's own dispatch is not a response


def test_signing_for_within_the_limit_is_on_time_and_after_it_late():
    h = History().dispatch(COMMUNITY, HOUSING).later(hours=7).act("acknowledge", HOUSING)
    assert figures(h.facts())[HOUSING].responded_on_time == 1
    late = History().dispatch(COMMUNITY, HOUSING).later(hours=9).act("acknowledge", HOUSING)
    housing = figures(late.facts())[HOUSING]
    assert (housing.responded_late, housing.responded_on_time, housing.response_rate) == (1, 0, 0.0)


def test_the_response_limit_is_the_earliest_deadline_started_with_the_dispatch():
    h = History().dispatch(COMMUNITY, HOUSING, limit=timedelta(hours=2)).later(hours=3).act("acknowledge",
                                                                                            HOUSING)
    receipt = next(f for f in h.facts() if f.kind == "receipt")
    assert receipt.due_at == T0 + timedelta(hours=2) and figures(h.facts())[HOUSING].responded_late == 1


def test_only_the_receiving_unit_answers_its_dispatch():
    h = History().dispatch(COMMUNITY, HOUSING).later(hours=1).act("acknowledge", URBAN, kind="sign_for")
    assert figures(h.facts())[HOUSING].awaiting_response == 1


def test_a_return_before_signing_counts_against_the_unit_and_a_recall_is_left_out():
    returned = (History().dispatch(COMMUNITY, HOUSING).later(hours=1)
                .act("return_case", HOUSING, ("CaseAssigned", {"from_unit": HOUSING, "to_unit": COMMUNITY}),
                     reason="不归我管"))
    fig = figures(returned.facts())
    assert fig[HOUSING].unanswered_returned == 1 and fig[HOUSING].response_rate == 0.0
    assert fig[HOUSING].returns == 1 and fig[COMMUNITY].receipts == 0  # a return is no dispatch to answer
    recalled = (History().dispatch(COMMUNITY, HOUSING).later(hours=1)
                .act("recall", COMMUNITY, ("CaseAssigned", {"from_unit": HOUSING, "to_unit": COMMUNITY}),
                     kind="recall"))
    fig = figures(recalled.facts())
    assert fig[HOUSING].unanswered_withdrawn == 1 and fig[HOUSING].response_rate is None


def test_a_reassignment_is_a_new_dispatch_for_the_new_unit_and_withdraws_the_old_one():
    h = (History().dispatch(COMMUNITY, HOUSING).later(hours=1)
         .dispatch(HOUSING, URBAN, by=STREET, action="redispatch", kind="reassign")
         .later(hours=1).act("acknowledge", URBAN).later(hours=1).act("reply", URBAN).closed())
    fig = figures(h.facts())
    assert fig[HOUSING].unanswered_withdrawn == 1 and fig[HOUSING].withdrawn == 1
    assert fig[URBAN].responded_on_time == 1 and fig[URBAN].resolved == 1
    assert fig[URBAN].resolution_rate == 1.0


def test_a_take_over_answers_itself():
    h = History().dispatch(COMMUNITY, HOUSING).later(hours=30).act(
        "take_over", STREET, ("CaseAssigned", {"from_unit": HOUSING, "to_unit": STREET}), kind="take_over")
    fig = figures(h.facts())
    assert fig[STREET].receipts == 1 and fig[STREET].responded_on_time == 1
    assert fig[HOUSING].unanswered_withdrawn == 1


def test_each_unit_that_received_a_case_gets_one_outcome_when_it_closes():
    h = (History().dispatch(COMMUNITY, HOUSING).act("acknowledge", HOUSING)
         .act("return_case", HOUSING, ("CaseAssigned", {"from_unit": HOUSING, "to_unit": COMMUNITY}))
         .dispatch(COMMUNITY, URBAN).act("acknowledge", URBAN).act("reply", URBAN).closed())
    fig = figures(h.facts())
    assert fig[URBAN].resolved == 1 and fig[COMMUNITY].passed_on == 1
    assert fig[HOUSING].returned_unresolved == 1 and fig[HOUSING].resolution_rate == 0.0
    assert fig[HOUSING].responded_on_time == 1  # it signed for it in time, then returned it
    assert fig[COMMUNITY].resolution_rate is None and fig[COMMUNITY].open == 0


def test_merged_rejected_and_open_cases_are_shown_apart_from_the_resolution_rate():
    rejected = figures(History().act("reject", COMMUNITY).closed("rejected").facts())[COMMUNITY]
    assert rejected.rejected == 1 and rejected.not_accepted == 1 and rejected.resolution_rate is None
    merged = figures(History().act("merge", COMMUNITY).closed("merged").facts())[COMMUNITY]
    assert merged.merged == 1 and merged.resolution_rate is None
    still_open = figures(History().dispatch(COMMUNITY, HOUSING).facts())
    assert still_open[HOUSING].open == 1 and still_open[COMMUNITY].open == 1
    parked = figures(History().dispatch(COMMUNITY, HOUSING).act("park", STREET).closed("backlogged").facts())
    assert parked[HOUSING].closed_other == 1 and parked[HOUSING].resolution_rate == 0.0


def test_default_ratings_of_either_lean_are_shown_apart_and_left_out_of_satisfaction():
    grid = (History().dispatch(COMMUNITY, HOUSING).act("acknowledge", HOUSING).act("reply", HOUSING)
            .act("rate_by_default", None).act("verify_pass", COMMUNITY).closed())
    housing = figures(grid.facts())[HOUSING]
    assert housing.rated_by_default == 1 and housing.rated == 0 and housing.satisfaction_rate is None
    hotline = History("hotline_request")
    for n, rating in enumerate(("satisfied", "satisfied", None, None)):
        hotline.dispatch(COMMUNITY, f"unit-{n}").act("sign_for", f"unit-{n}").act("reply", f"unit-{n}")
        hotline.act("rate", None, rating=rating) if rating else hotline.act("close_unrated", None)
    total = _total(hotline.facts())
    assert (total.rated, total.rated_by_default, total.satisfaction_rate) == (2, 2, 1.0)  # not 50%


def test_a_case_closed_resolved_without_any_rating_since_the_reply_is_a_missing_rating():
    h = History("hotline_request").dispatch(COMMUNITY, HOUSING).act("reply", HOUSING).closed()
    housing = figures(h.facts())[HOUSING]
    assert housing.rating_missing == 1 and housing.rated == 0


def test_a_rating_belongs_to_the_unit_that_replied_last():
    h = (History().dispatch(COMMUNITY, HOUSING).act("acknowledge", HOUSING).act("reply", HOUSING)
         .act("reassign", STREET, ("CaseAssigned", {"from_unit": HOUSING, "to_unit": URBAN}), kind="reassign")
         .act("rate", None, rating="basically_satisfied"))
    fig = figures(h.facts())
    assert fig[HOUSING].basically_satisfied == 1 and (URBAN not in fig or fig[URBAN].rated == 0)


def test_a_dissatisfied_round_and_a_failed_review_are_counted_against_the_lead():
    h = (History().dispatch(COMMUNITY, HOUSING).act("acknowledge", HOUSING).act("reply", HOUSING)
         .act("rate", None, to_state="handling", rating="dissatisfied")
         .act("reply", HOUSING).act("rate", None, to_state="reviewing", rating="satisfied")
         .act("verify_fail", COMMUNITY, to_state="handling"))
    housing = figures(h.facts())[HOUSING]
    assert housing.rework_rounds == 1 and housing.failed_reviews == 1
    assert (housing.rated, housing.dissatisfied, housing.satisfied) == (2, 1, 1)
    assert housing.satisfaction_rate == 0.5
    hotline = (History("hotline_request").dispatch(COMMUNITY, HOUSING).act("reply", HOUSING)
               .act("rate", None, to_state="dissatisfied_review", rating="dissatisfied")
               .act("order_rework", None, to_state="handling"))
    assert figures(hotline.facts())[HOUSING].rework_rounds == 1  # one round, not two


def test_extensions_and_suspensions_count_when_approved():
    h = (History().dispatch(COMMUNITY, HOUSING).act("acknowledge", HOUSING)
         .act("request_extension", HOUSING).act("approve_extension", COMMUNITY)
         .act("request_extension", HOUSING).act("deny_extension", COMMUNITY)
         .act("ask_to_suspend", HOUSING, kind="suspension_request")
         .act("approve_suspension", STREET, kind="suspension_approval"))
    housing = figures(h.facts())[HOUSING]
    assert housing.extensions == 1 and housing.suspensions == 1


def test_co_handling_parts_are_receipts_with_their_own_limit():
    due = (T0 + timedelta(hours=4)).isoformat()
    h = (History().dispatch(COMMUNITY, HOUSING)
         .decision(("CoHandlingOpened", {"unit": URBAN, "part_role": "co", "due_at": due}),
                   ("CoHandlingOpened", {"unit": "dept-water", "part_role": "co", "due_at": due}),
                   ("CoHandlingOpened", {"unit": "dept-civil", "part_role": "co", "due_at": due}))
         .later(hours=1).act("co_sign_for", URBAN, ("CoHandlingSignedFor", {"unit": URBAN, "on_time": True}),
                             kind="co_sign_for")
         .later(hours=5).act("co_sign_for", "dept-water",
                             ("CoHandlingSignedFor", {"unit": "dept-water", "on_time": False}),
                             kind="co_sign_for")
         .act("close_part", COMMUNITY, ("CoHandlingClosed", {"unit": "dept-civil", "by_unit": COMMUNITY,
                                                             "reason": "不需要"}), kind="co_close"))
    fig = figures(h.facts())
    assert fig[URBAN].receipts == 1 and fig[URBAN].response_rate == 1.0
    assert fig["dept-water"].responded_late == 1 and fig["dept-water"].response_rate == 0.0
    assert fig["dept-civil"].unanswered_withdrawn == 1 and fig["dept-civil"].response_rate is None
    assert fig[HOUSING].awaiting_response == 1  # the co-handlers' sign-for is not the lead's


def test_supervision_orders_reminders_notices_and_improper_returns_count_for_the_unit_they_name():
    h = (History().dispatch(COMMUNITY, HOUSING)
         .decision(("SupervisionOrderIssued", {"order": "SO-1", "level": "key", "unit": HOUSING}),
                   ("SupervisionOrderIssued", {"order": "SO-2", "level": "general", "unit": URBAN}))
         .decision(("SupervisionOrderAnswered", {"order": "SO-1", "unit": HOUSING, "on_time": True}),
                   ("SupervisionOrderOverdue", {"order": "SO-2", "unit": URBAN}))
         .decision(("DeadlineBreached", {"deadline": "acknowledge.2", "breach": 1, "missed": 0}),
                   ("CaseEscalated", {"from_level": "community", "to_level": "street", "level": 1}),
                   ("CaseSupervised", {"reason": "x"}))
         .decision(("ReminderIssued", {"deadline": "acknowledge.2", "timer": "acknowledge", "unit": HOUSING}))
         .decision(("CriticismNoticeIssued", {"deadline": "acknowledge.2", "timer": "acknowledge",
                                              "unit": HOUSING}))
         .decision(("ReturnReviewRequested", {"unit": URBAN, "count": 2}),
                   ("ReturnReviewed", {"unit": URBAN, "upheld": True}),
                   ("ImproperReturnRecorded", {"unit": URBAN})))
    fig = figures(h.facts())
    housing, urban = fig[HOUSING], fig[URBAN]
    assert (housing.supervision_orders, housing.key_supervision_orders) == (1, 1)
    assert housing.supervision_answered_on_time == 1
    assert (urban.supervision_orders, urban.supervision_overdue, urban.improper_returns) == (1, 1, 1)
    assert (housing.breaches, housing.escalations, housing.supervised) == (1, 1, 1)
    assert (housing.reminders, housing.criticism_notices) == (1, 1)


def test_a_dispatch_and_its_response_count_in_the_period_of_the_dispatch():
    h = History().later(hours=14, minutes=30)  # 23:30 local
    h.dispatch(COMMUNITY, HOUSING).later(hours=1).act("acknowledge", HOUSING)
    response = next(f for f in h.facts() if f.kind == "response")
    assert str(response.day) == "2026-11-02" and response.occurred_at.astimezone(
        timezone(timedelta(hours=8))).date().isoformat() == "2026-11-03"


def test_a_recorded_action_kind_wins_over_the_action_name():
    h = History("city_custom").dispatch(COMMUNITY, HOUSING).act("zhi_pai_qian_shou", HOUSING, kind="sign_for")
    assert figures(h.facts())[HOUSING].responded_on_time == 1
    unknown = History("city_custom").dispatch(COMMUNITY, HOUSING).act("acknowledge", HOUSING)
    assert figures(unknown.facts())[HOUSING].responded == 0  # no kind, not a shipped workflow: "other"


def test_facts_from_the_whole_history_equal_the_facts_written_decision_by_decision():
    h = (History().dispatch(COMMUNITY, HOUSING).later(hours=3).act("acknowledge", HOUSING)
         .act("return_case", HOUSING, ("CaseAssigned", {"from_unit": HOUSING, "to_unit": COMMUNITY}))
         .dispatch(COMMUNITY, URBAN).act("reply", URBAN).act("rate", None, rating="dissatisfied",
                                                             to_state="handling")
         .act("reply", URBAN).act("rate_by_default", None).closed())
    whole = derive_facts([], h.events, workflow="grid_event", intake_unit=intake_unit_of(h.events, URBAN),
                         response_states=RESPONSE_STATES)
    assert whole == h.facts()


def _total(facts: list[Fact]) -> UnitStats:
    c: dict[str, int] = {}
    for u in figures(facts).values():
        for k, v in u.counts.items():
            c[k] = c.get(k, 0) + v
    return UnitStats(None, "", "total", c)


def test_an_assignment_in_a_later_decision_owes_nothing_to_the_last_action_before_it():
    h = (History().dispatch(COMMUNITY, HOUSING)
         .act("return_case", HOUSING, ("CaseAssigned", {"from_unit": HOUSING, "to_unit": COMMUNITY}))
         .later(hours=5)
         .decision(("DeadlineBreached", {"deadline": "triage.3", "breach": 1}),
                   ("CaseEscalated", {"from_level": "community", "to_level": "street", "level": 1}),
                   ("CaseAssigned", {"from_unit": COMMUNITY, "to_unit": STREET})))
    whole = derive_facts([], h.events, workflow="grid_event", intake_unit=COMMUNITY,
                         response_states=RESPONSE_STATES)
    assert whole == h.facts()
    assert figures(whole)[STREET].receipts == 1  # handed up by the system: a dispatch to answer
