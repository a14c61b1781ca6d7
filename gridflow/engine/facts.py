"""Per-unit statistical facts (三率 and the counters beside them), derived from history alone.

Why facts and not case columns: a case column says where a case is *now* (its current holder, its
last rating), so figures grouped on it credit a department with what the community did and forget
every dissatisfied round. A fact says what one unit did or was owed at one instant — a dispatch it
received, its first response to it, a case it led to its close, a rating of its reply, a rework round
it was sent — and figures are COUNTs of facts per unit, kind and day, so they add up over any period
and can be kept in summary tables.

:func:`derive_facts` is a pure fold: the facts already recorded for a case (``prior``) and the history
entries one decision appends give the new facts. Deriving from the whole history at once gives the same
facts as deriving decision by decision (``gridflow stats rebuild`` relies on it). The definitions are
written down in ``docs/three-rates.md``; the names below follow them.

Statistics read action *kinds* (``ActionTaken`` data ``"kind"``), never action names; history written
before actions had kinds falls back to :data:`LEGACY_KINDS`, the kinds of the shipped workflows' actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Collection, Iterable, Mapping, Protocol, Sequence
from zoneinfo import ZoneInfo

#: Periods are local days in the dispatch centres' zone.
PERIOD_ZONE = ZoneInfo("Asia/Shanghai")

#: A unit's first action of one of these kinds on a dispatch it received is its response (签收/响应).
RESPONSE_KINDS = frozenset({"sign_for", "co_sign_for", "contact", "reply", "take_over"})
#: Actions that answer the resident (the reply a rating judges).
REPLY_KINDS = frozenset({"reply", "triage_local"})
#: How a unit let a case go when the lead passed to another unit.
RETURNED, WITHDRAWN, PASSED_ON = "returned", "withdrawn", "passed_on"
_LET_GO_BY_KIND = {"return": RETURNED, "recall": WITHDRAWN, "reassign": WITHDRAWN, "take_over": WITHDRAWN}
#: Counted per unit (fact kind -> the action kinds that make it), attributed to the lead at the time.
_COUNTED_KINDS = {"rework": "rework", "review_fail": "review_fail", "extension_approval": "extension",
                  "suspension_approval": "suspension"}
#: History events counted per unit: event type -> fact kind (attributed to ``data["unit"]``, else the lead).
_COUNTED_EVENTS = {
    "DeadlineBreached": "breach", "CaseEscalated": "escalation", "CaseSupervised": "supervised",
    "ImproperReturnRecorded": "improper_return", "SupervisionOrderIssued": "supervision_order",
    "SupervisionOrderAnswered": "supervision_answered", "SupervisionOrderOverdue": "supervision_overdue",
    "ReminderIssued": "reminder", "CriticismNoticeIssued": "criticism_notice",
}

#: The kinds of the shipped workflows' actions, for history recorded before ActionTaken carried them.
LEGACY_KINDS: Mapping[str, Mapping[str, str]] = {
    "grid_event": {
        "handle_locally": "triage_local", "merge": "merge", "reject": "reject", "dispatch": "dispatch",
        "refer_to_street": "refer_up", "acknowledge": "sign_for", "return_case": "return",
        "request_extension": "extension_request", "approve_extension": "extension_approval",
        "deny_extension": "extension_denial", "suspend": "suspension_approval", "resume": "resume",
        "reply": "reply", "park": "park", "rate": "rate", "rate_by_default": "rate_default",
        "verify_pass": "review_pass", "verify_fail": "review_fail", "supervise": "supervise"},
    "hotline_request": {
        "dispatch": "dispatch", "answer_directly": "triage_local", "reject": "reject", "merge": "merge",
        "sign_for": "sign_for", "return_case": "return", "contact_requester": "contact",
        "request_extension": "extension_request", "approve_extension": "extension_approval",
        "deny_extension": "extension_denial", "reply": "reply", "call_back": "other", "rate": "rate",
        "close_unrated": "rate_default", "order_rework": "rework", "close_as_is": "close",
        "supervise": "supervise"},
    "dispute_mediation": {
        "accept": "triage_local", "reject": "reject", "record_session": "other", "hand_up": "refer_up",
        "take_over": "take_over", "reach_agreement": "reply", "confirm_performed": "close",
        "report_default": "rework", "refer_to_court": "close", "withdraw": "close", "supervise": "supervise"},
    "emergency_incident": {
        "respond": "contact", "dismiss": "reject", "merge": "merge", "report_initial": "other",
        "escalate_response": "refer_up", "assign_department": "dispatch", "report_progress": "other",
        "contain": "other", "report_final": "reply", "supervise": "supervise"},
    "special_care_visit": {
        "visit": "other", "arrange_help": "other", "pause_visits": "other", "resume_visits": "other",
        "deregister": "close", "supervise": "supervise"},
}


class HistoryEntry(Protocol):
    """What a fact is derived from: a numbered history entry (``ChainedEvent``, a stored event row)."""

    seq: int
    type: str
    actor: str
    role: str
    at: datetime
    data: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing a unit did or was owed. ``at`` places it in a period (see docs/three-rates.md);
    ``occurred_at`` is when it happened; ``ref`` ties a receipt's outcome to the receipt."""

    seq: int  # the history entry it comes from
    unit: str | None
    kind: str
    at: datetime
    occurred_at: datetime
    role: str | None = None  # receipts and receptions: lead / co / intake
    on_time: bool | None = None
    detail: str | None = None  # a rating, an outcome, how a unit let a case go, a supervision level
    ref: int | None = None  # the receipt (its seq) an answer belongs to
    due_at: datetime | None = None  # a receipt's response limit
    peer: str | None = None  # the other unit of a handover or a receipt

    @property
    def day(self) -> date:
        return local_day(self.at)


def local_day(at: datetime) -> date:
    return at.astimezone(PERIOD_ZONE).date()


def action_kind(workflow: str, data: Mapping[str, Any]) -> str:
    """The kind of an ``ActionTaken``: recorded with it, else the shipped workflow's, else ``other``."""
    kind = data.get("kind")
    if kind:
        return str(kind)
    return LEGACY_KINDS.get(workflow, {}).get(str(data.get("action")), "other")


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def derive_facts(prior: Sequence[Fact], events: Sequence[HistoryEntry], *, workflow: str,
                 intake_unit: str | None, response_states: Collection[str] = ()) -> list[Fact]:
    """The facts the ``events`` (in order, one decision's or a whole history) add to ``prior``.

    ``intake_unit`` is the unit that got the report (the case's first holder: the community or the
    operator centre), read at ``CaseReported``. ``response_states`` are the states of the workflow's
    response stage: a dissatisfied rating that sends the case back to one of them is a rework round.
    """
    fold = _Fold(prior, workflow, intake_unit, frozenset(response_states))
    fold.run(list(events))
    return fold.new


class _Fold:
    """The case as facts see it: its lead, the dispatches still awaiting a response, who received it."""

    def __init__(self, prior: Sequence[Fact], workflow: str, intake_unit: str | None,
                 response_states: frozenset[str]) -> None:
        self.workflow = workflow
        self.intake_unit = intake_unit
        self.response_states = response_states
        self.new: list[Fact] = []
        self.lead: str | None = None
        self.open_receipts: dict[int, Fact] = {}  # seq -> receipt still awaiting its response
        self.received: dict[str, Fact] = {}  # unit -> its first reception of the case
        self.let_go: dict[str, str] = {}  # unit -> how it last let the case go
        self.replier: str | None = None  # the lead at the last reply
        self.rated_since_reply = False
        for f in prior:
            self._remember(f)
        # the batch being folded: the last action seen, and deadlines that start after each reception
        self.kind: str | None = None
        self.actor_unit: str | None = None
        self.kind_at: datetime | None = None
        self.limits: dict[int, datetime] = {}

    # --- state, from facts (prior or new: one rule) --------------------------------------------

    def _remember(self, f: Fact) -> None:
        k = f.kind
        if k == "receipt":
            self.open_receipts[f.seq if f.ref is None else f.ref] = f
        elif k in ("response", "unanswered"):
            self.open_receipts.pop(f.ref, None)
        elif k == "received":
            self.received.setdefault(f.unit, f)
            if f.role == "intake" or self.lead is None:
                self.lead = f.unit
        elif k == "handover":
            self.let_go[f.unit] = f.detail or PASSED_ON
            self.lead = f.peer
        elif k == "reply":
            self.replier, self.rated_since_reply = f.unit, False
        elif k in ("rating", "rating_default"):
            self.rated_since_reply = True

    def _add(self, f: Fact) -> Fact:
        self.new.append(f)
        self._remember(f)
        return f

    # --- the fold ------------------------------------------------------------------------------

    def run(self, events: list[HistoryEntry]) -> None:
        self._limits(events)
        for e in events:
            data = e.data or {}
            if e.type in _OPENS_DECISION or (self.kind_at is not None and e.at != self.kind_at):
                self.kind = self.actor_unit = self.kind_at = None  # what follows is not that action's
            handler = _HANDLERS.get(e.type)
            if handler is not None:
                handler(self, e, data)
            elif e.type in _COUNTED_EVENTS:
                self._counted(e, data)

    def _limits(self, events: list[HistoryEntry]) -> None:
        """A reception's response limit: the earliest due of the deadlines that start with it (before the
        next action) — the sign-for deadline, or the answer deadline of an urgent request."""
        pending: list[HistoryEntry] = []
        for e in events:
            if e.type == "ActionTaken" or e.type in _OPENS_DECISION:
                pending = []
            elif e.type == "CaseAssigned":
                pending.append(e)
            elif e.type == "DeadlineStarted" and pending:
                due = _parse((e.data or {}).get("due_at"))
                for seq in (a.seq for a in pending if a.at == e.at):
                    if due is not None and (seq not in self.limits or due < self.limits[seq]):
                        self.limits[seq] = due

    def _counted(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        kind = _COUNTED_EVENTS[e.type]
        unit = data.get("unit") or self.lead
        detail = data.get("level") if kind == "supervision_order" else None
        on_time = data.get("on_time") if kind == "supervision_answered" else None
        self._add(Fact(e.seq, unit, kind, e.at, e.at, on_time=on_time, detail=detail))

    def reported(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        unit = self.intake_unit or data.get("origin_unit")
        self.lead = unit
        if unit is not None and unit not in self.received:
            self._add(Fact(e.seq, unit, "received", e.at, e.at, role="intake"))

    def action(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        kind = action_kind(self.workflow, data)
        self.kind, self.actor_unit, self.kind_at = kind, data.get("unit"), e.at
        unit = self.actor_unit
        if kind in RESPONSE_KINDS and unit is not None:
            self._respond(e, lambda r: r.unit == unit and r.role == "lead")
        if kind == "return":
            self._add(Fact(e.seq, unit or self.lead, "return", e.at, e.at))
        if kind in REPLY_KINDS:
            self._add(Fact(e.seq, self.lead, "reply", e.at, e.at, detail=kind))
        if kind in ("rate", "rate_default"):
            self._rated(e, data, kind)
        counted = _COUNTED_KINDS.get(kind)
        if counted is not None:
            self._add(Fact(e.seq, self.lead, counted, e.at, e.at))

    def _rated(self, e: HistoryEntry, data: Mapping[str, Any], kind: str) -> None:
        unit = self.replier or self.lead
        if kind == "rate_default":
            self._add(Fact(e.seq, unit, "rating_default", e.at, e.at))
            return
        rating = (data.get("payload") or {}).get("rating")
        self._add(Fact(e.seq, unit, "rating", e.at, e.at, detail=str(rating) if rating else None))
        if rating == "dissatisfied" and data.get("to_state") in self.response_states:
            self._add(Fact(e.seq, self.lead, "rework", e.at, e.at, detail="dissatisfied"))

    def _respond(self, e: HistoryEntry, which, on_time: bool | None = None) -> None:
        for ref, r in list(self.open_receipts.items()):
            if which(r):
                ok = on_time if on_time is not None else (r.due_at is None or e.at <= r.due_at)
                self._add(Fact(e.seq, r.unit, "response", r.at, e.at, role=r.role, on_time=bool(ok), ref=ref))

    def _unanswered(self, e: HistoryEntry, which, how: str) -> None:
        for ref, r in list(self.open_receipts.items()):
            if which(r):
                self._add(Fact(e.seq, r.unit, "unanswered", r.at, e.at, role=r.role, detail=how, ref=ref))

    def assigned(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        frm, to = data.get("from_unit"), data.get("to_unit")
        how = _LET_GO_BY_KIND.get(self.kind or "", PASSED_ON)
        if how == WITHDRAWN and self.actor_unit is not None and self.actor_unit == frm:
            how = PASSED_ON  # a unit that hands its own case on passes it on
        if frm is not None:
            self._unanswered(e, lambda r: r.unit == frm and r.role == "lead", how)
            self._add(Fact(e.seq, frm, "handover", e.at, e.at, detail=how, peer=to))
        else:
            self.lead = to
        if to is None:
            return
        if to not in self.received:
            self._add(Fact(e.seq, to, "received", e.at, e.at, role="lead", peer=frm))
        if self.kind in ("return", "recall"):
            return  # back to the unit that dispatched it: no new dispatch to answer
        receipt = self._add(Fact(e.seq, to, "receipt", e.at, e.at, role="lead", due_at=self.limits.get(e.seq),
                                 peer=frm))
        if self.kind in RESPONSE_KINDS and self.actor_unit == to:  # a take-over answers itself
            self._respond(e, lambda r: r is receipt)

    def co_opened(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        unit = data.get("unit")
        if unit is not None:
            # A co-handler responds by signing for its part: its limit is the part's sign-for limit.
            due = _parse(data.get("sign_due") or data.get("due_at"))
            self._add(Fact(e.seq, unit, "receipt", e.at, e.at, role="co", due_at=due, peer=self.lead))

    def co_answered(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        unit, on_time = data.get("unit"), data.get("on_time")
        self._respond(e, lambda r: r.unit == unit and r.role == "co",
                      on_time if isinstance(on_time, bool) else None)

    def co_closed(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        unit = data.get("unit")
        self._unanswered(e, lambda r: r.unit == unit and r.role == "co", WITHDRAWN)

    def closed(self, e: HistoryEntry, data: Mapping[str, Any]) -> None:
        """Each unit that received the case gets its outcome, placed by when it received the case."""
        outcome = str(data.get("outcome") or "other")
        for unit, rec in self.received.items():
            detail = _closing(outcome) if unit == self.lead else self.let_go.get(unit, PASSED_ON)
            self._add(Fact(e.seq, unit, "outcome", rec.at, e.at, role=rec.role, detail=detail))
        if outcome == "resolved" and self.replier is not None and not self.rated_since_reply:
            self._add(Fact(e.seq, self.replier, "rating_missing", e.at, e.at))
        self._unanswered(e, lambda r: True, WITHDRAWN)


def _closing(outcome: str) -> str:
    return outcome if outcome in ("resolved", "merged", "rejected") else "closed_other"


#: History entries that only ever open a decision (a report, a timer firing, a migration): an action seen
#: before them says nothing about what follows. Within a decision every entry has the decision's instant.
_OPENS_DECISION = frozenset({"CaseReported", "DeadlineWarned", "DeadlineBreached", "WorkflowMigrated",
                             "ReminderIssued", "CriticismNoticeIssued", "SupervisionOrderOverdue",
                             "SuspensionLimitReached"})

_HANDLERS = {
    "CaseReported": _Fold.reported, "ActionTaken": _Fold.action, "CaseAssigned": _Fold.assigned,
    "CoHandlingOpened": _Fold.co_opened, "CoHandlingSignedFor": _Fold.co_answered,
    "CoHandlingAnswered": _Fold.co_answered, "CoHandlingClosed": _Fold.co_closed, "CaseClosed": _Fold.closed,
}


def intake_unit_of(events: Iterable[HistoryEntry], holder_now: str | None) -> str | None:
    """The case's first holder, from its history: whom the first reassignment took it from, else the
    holder it still has (holders change only by ``CaseAssigned``)."""
    for e in events:
        if e.type == "CaseAssigned":
            return (e.data or {}).get("from_unit") or holder_now
    return holder_now

#: The history entries that can add a fact; a decision with none of them adds none (and needs no look-up).
FACT_EVENT_TYPES = frozenset(_HANDLERS) | frozenset(_COUNTED_EVENTS)
