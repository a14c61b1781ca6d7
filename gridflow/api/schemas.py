"""API shapes (``…Create`` in, ``…Public`` out, list envelopes), kept apart from engine and storage shapes."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainValidator, StringConstraints,
    WithJsonSchema, model_validator,
)

from ..engine.payload import (
    ATTACHMENT_TEXT, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, PAYLOAD_BOUNDS, json_problem,
)

#: Text without control characters (PostgreSQL refuses NUL; no header or code needs the others).
_CLEAN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Short = Annotated[str, StringConstraints(max_length=200, pattern=_CLEAN)]
LongText = Annotated[str, StringConstraints(max_length=4000, pattern=_CLEAN)]
Light = Literal["none", "green", "yellow", "red", "suspended"]
Role = Literal["grid_worker", "resident", "community_dispatcher", "street_dispatcher", "district_dispatcher",
               "department_handler", "supervisor", "admin", "hotline_operator", "mediator",
               "disaster_officer"]
UnitKind = Literal["city", "district", "street", "community", "grid", "department"]


# --- bounded free-form input --------------------------------------------------------------------

def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON as deep and as big as ``engine.payload.PAYLOAD_BOUNDS`` lets it be."""
    problem = json_problem(value, PAYLOAD_BOUNDS)
    if problem is not None:
        raise ValueError(f"{problem[0]} {problem[1]}")
    return value


#: A JSON object of a caller's choosing (an action's payload): plain JSON, bounded in depth and size.
FreeJson = Annotated[dict[str, Any], AfterValidator(_bounded_json)]

#: Dates and times a caller may ask about: real calendar dates, nothing before or after these.
DATE_MIN, DATE_MAX = date(2000, 1, 1), date(2100, 12, 31)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}"
                       r"(:[0-9]{2}([.,][0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$")


def _in_range(day: date) -> None:
    if not DATE_MIN <= day <= DATE_MAX:
        raise ValueError(f"must be between {DATE_MIN} and {DATE_MAX}")


def _iso_date(value: Any) -> date:
    """Strict: an ISO date (``2026-10-01``) — never a number, which lax parsing would take as a timestamp."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and _DATE.match(value):
        day = date.fromisoformat(value)  # ValueError (e.g. 2026-02-30) is reported as the field's error
    else:
        raise ValueError("must be a date as YYYY-MM-DD")
    _in_range(day)
    return day


def _iso_datetime(value: Any) -> datetime:
    """Strict: an ISO date-time (``2026-10-01T08:00:00+08:00``) or date (midnight); never a number."""
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str) and _DATETIME.match(value):
        at = datetime.fromisoformat(value.replace(",", "."))
    else:
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-10-01T08:00:00+08:00, or a date")
    _in_range(at.date())
    return at


IsoDate = Annotated[date, PlainValidator(_iso_date),
                    WithJsonSchema({"type": "string", "format": "date",
                                    "description": f"YYYY-MM-DD, from {DATE_MIN} to {DATE_MAX}"})]
IsoDateTime = Annotated[datetime, PlainValidator(_iso_datetime),
                        WithJsonSchema({"type": "string", "format": "date-time",
                                        "description": f"ISO 8601, from {DATE_MIN} to {DATE_MAX}"})]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable, the other extension members depend on it."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(examples=["urn:gridflow:problem:action_not_allowed"])
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable error code", examples=["action_not_allowed"])
    instance: str | None = None


# --- workflows ----------------------------------------------------------------------------------

class Label(BaseModel):
    zh: str
    en: str


class WorkflowSummary(BaseModel):
    name: str
    version: int
    versions: list[int]
    label: Label
    description: str


class WorkflowsPublic(BaseModel):
    data: list[WorkflowSummary]


class FieldPublic(BaseModel):
    name: str
    type: str
    required: bool
    choices: list[str] = []
    label: Label | None = None


class TimerPublic(BaseModel):
    name: str
    label: Label
    duration: str
    calendar: str
    warn_at: list[float]
    repeat: str | None = None
    on_breach: dict[str, Any]
    #: The category limit that replaces ``duration`` when the case's category sets it.
    category_limit: str | None = None


# --- the event catalogue ------------------------------------------------------------------------

class CategoryPublic(BaseModel):
    code: str = Field(examples=["E0102"])
    label: Label
    kind: Literal["component", "event", "governance", "hotline"]
    kind_label: Label
    major: str = Field(description="the major class, e.g. E01", examples=["E01"])
    major_label: Label
    workflow: str = Field(description="the workflow a report of this category opens when it names none")
    urgency: Literal["normal", "urgent", "emergency"]
    #: Limit name -> duration (``4wh``, ``2wd``), read by the timers that say ``category_limit: <name>``.
    limits: dict[str, str]
    #: Who answers first: ``owner`` (权属单位) and/or ``territory`` (属地), in order.
    assignment: list[str]


class CategoriesPublic(BaseModel):
    data: list[CategoryPublic]
    count: int


def category_public(c) -> CategoryPublic:
    from ..engine.categories import KIND_LABELS

    return CategoryPublic(code=c.code, label=_label(c.label), kind=c.kind,
                          kind_label=_label(KIND_LABELS[c.kind]), major=c.major,
                          major_label=_label(c.major_label), workflow=c.workflow,
                          urgency=c.urgency, limits=c.limit_texts(), assignment=list(c.assignment))


class StatePublic(BaseModel):
    name: str
    label: Label
    stage: str
    final: bool
    pauses_sla: bool
    holder_roles: list[str]
    timers: list[TimerPublic]
    outcome: str | None = None


class ActionPublic(BaseModel):
    name: str
    label: Label
    sources: list[str]
    destinations: list[str]
    roles: list[str]
    guards: list[str]
    fields: list[FieldPublic]


class WorkflowPublic(BaseModel):
    name: str
    version: int
    label: Label
    description: str
    initial: str
    calendar: str
    roles: list[str]
    stages: dict[str, Label]
    escalation: list[str]
    states: list[StatePublic]
    actions: list[ActionPublic]
    source_yaml: str | None = None


class DiagramPublic(BaseModel):
    name: str
    version: int
    lang: Literal["zh", "en"]
    mermaid: str


# --- cases --------------------------------------------------------------------------------------

class Location(BaseModel):
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    address: Annotated[str, StringConstraints(max_length=300, pattern=_CLEAN)] | None = None


class Reporter(BaseModel):
    name: Annotated[str, StringConstraints(max_length=100, pattern=_CLEAN)] | None = None
    phone: Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9+\- ()]*$")] | None = None


class Attachment(BaseModel):
    """Metadata of a photo or document stored elsewhere (gridflow keeps no files): these members only,
    as ``engine.payload`` accepts them in an action's ``attachments`` too."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(max_length=ATTACHMENT_TEXT["name"], pattern=_CLEAN)]
    url: Annotated[str, StringConstraints(max_length=ATTACHMENT_TEXT["url"], pattern=_CLEAN)] | None = None
    content_type: Annotated[str, StringConstraints(max_length=ATTACHMENT_TEXT["content_type"],
                                                   pattern=_CLEAN)] | None = None
    size: int | None = Field(None, ge=0, le=MAX_ATTACHMENT_BYTES)


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "workflow": "grid_event", "category": "C0101", "title": "井盖破损",
        "description": "海港路12号门口井盖破损，有安全隐患", "unit": "37060200100101",
        "location": {"address": "海港路12号"}, "reporter": {"name": "李明", "phone": "13812345678"}}]})

    #: Without it, the category's default workflow (GET /api/v1/catalog).
    workflow: Code | None = None
    #: A code of the event catalogue (GET /api/v1/catalog), e.g. E0102 (暴露垃圾); required.
    category: Annotated[str, StringConstraints(max_length=64, pattern=_CLEAN)] = ""
    title: Short = ""
    description: LongText = ""
    #: A known grid or community code; without it the coordinates decide the grid.
    unit: Code | None = None
    location: Location = Location()
    reporter: Reporter = Reporter()
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    channel: Annotated[str, StringConstraints(max_length=32, pattern=r"^[a-z0-9_]+$")] = "api"
    #: 举报人保密: who reported the case is shown to no handling unit, only to the reporter.
    confidential: bool = False


class CaseCreated(BaseModel):
    number: str
    state: str
    version: int
    #: Shown once, only to a resident: use it as a bearer token to follow this case and rate it.
    resident_token: str | None = None


class SlaPublic(_Out):
    light: Light
    left_s: float | None = Field(None, description="working seconds left on the most urgent deadline")
    due_at: datetime | None = None
    deadline: str | None = None
    label: str | None = None


class CasePublic(_Out):
    number: str
    workflow: str
    workflow_version: int
    state: str
    state_label: str
    stage: str
    holder_unit: str | None
    holder_roles: list[str]
    escalation_level: int
    escalation_unit: str | None
    supervised: bool
    closed: bool
    outcome: str | None
    category: str
    title: str
    channel: str
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    next_due_at: datetime | None
    warned: bool
    breach_count: int
    version: int
    sla: SlaPublic
    due_at: datetime | None = Field(None, description="earliest due instant of the running deadlines")
    suspended: bool = Field(False, description="the SLA is paused (挂起)")
    escalated: int = Field(0, description="the escalation level the case is at (0: not escalated)")
    overdue: bool = Field(False, description="a deadline of the open case has passed")
    escalation_alert: bool = Field(False, description="at the top of its ladder: nowhere left to escalate")


class CasesPublic(BaseModel):
    data: list[CasePublic]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


class DeadlineExplanation(BaseModel):
    """Why a case is (or is not) overdue: the calendar, the clock's start, pauses, extensions, time used."""

    model_config = ConfigDict(extra="allow")
    deadline: str
    timer: str
    label: str
    state: str
    status: str
    calendar: dict[str, Any]
    duration: str
    started_at: str
    original_due: str
    current_due: str
    pauses: list[dict[str, Any]]
    extensions: list[dict[str, Any]]
    allowed_s: float
    used_s: float
    left_s: float
    overdue: bool
    breaches: int
    light: str
    #: true when a year from its start to its due date has only an estimated 放假调休 arrangement
    calendar_estimated: bool = False
    calendar_estimated_years: list[int] = []


class CaseDetailPublic(CasePublic):
    description: str
    origin_unit: str | None
    community_code: str | None
    street_code: str | None
    district_code: str | None
    address: str | None
    lat: float | None
    lon: float | None
    reporter_id: str | None
    reporter_name: str | None
    reporter_phone: str | None
    contact_masked: bool
    attachments: list[dict[str, Any]]
    rating: str | None
    data: dict[str, Any]
    first_response_at: datetime | None
    allowed_actions: list[str]
    deadlines: list[DeadlineExplanation]


class EventPublic(_Out):
    seq: int
    type: str
    actor: str
    role: str
    at: datetime
    data: dict[str, Any]
    prev_hash: str
    hash: str


class HistoryPublic(BaseModel):
    number: str
    data: list[EventPublic]


class ChainPublic(BaseModel):
    number: str
    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str = ""


class ActionEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    seq: int
    type: str
    actor: str
    role: str
    at: str
    data: dict[str, Any]
    hash: str


class ActionResultPublic(BaseModel):
    number: str
    state: str
    version: int
    events: list[ActionEvent]
    replayed: bool = Field(False, description="true when an Idempotency-Key repeated an earlier request")


# --- statistics ---------------------------------------------------------------------------------

def _n(text: str) -> Any:
    return Field(description=text)


class UnitStatsPublic(_Out):
    """One unit's figures over the period (or the total); every counter is a count of facts.
    Definitions: docs/three-rates.md and the description of ``GET /api/v1/stats/sla``."""

    unit: str | None
    name: str
    kind: str
    # 响应率 — dispatches (lead and co-handling) the unit received, placed by the dispatch time
    receipts: int = _n("派单 dispatches received (lead 主办 and co-handling 协办 parts)")
    responded: int = _n("dispatches the unit answered (first sign_for/co_sign_for/contact/reply/take_over)")
    responded_on_time: int = _n("answered within the dispatch's response limit")
    responded_late: int = _n("answered after the limit")
    unanswered_returned: int = _n("returned (退单) before any answer")
    unanswered_withdrawn: int = _n("recalled, reassigned, taken over or closed before any answer (left out)")
    unanswered_passed_on: int = _n("passed on by the unit itself before any answer")
    awaiting_response: int = _n("not answered yet")
    # 解决率 — cases the unit led, placed by when it first received the case
    received: int = _n("cases the unit received as the lead (the intake unit included)")
    resolved: int = _n("closed resolved while the unit led")
    merged: int = _n("closed as duplicates while the unit led (shown apart)")
    rejected: int = _n("closed as not accepted while the unit led (shown apart)")
    closed_other: int = _n("closed otherwise while the unit led (挂账 backlog, withdrawn, referred)")
    returned_unresolved: int = _n("returned by the unit (退单) and closed by another")
    passed_on: int = _n("dispatched onward by the unit and closed by another (shown apart)")
    withdrawn: int = _n("taken from the unit (recall, reassignment, take-over) and closed by another")
    open: int = _n("received and not closed yet (shown apart)")
    closed: int = _n("closed while the unit led: resolved + merged + rejected + closed_other")
    not_accepted: int = _n("merged + rejected")
    # 满意率 — ratings of the unit's reply, placed by the rating time
    rated: int = _n("rated by the resident (kind rate)")
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    rated_by_default: int = _n("default ratings (kind rate_default): excluded from the rate")
    rating_missing: int = _n("closed resolved after a reply without any rating: excluded from the rate")
    # counters, placed by when they happened
    rework_rounds: int = _n("重办 rework rounds: kind rework, and dissatisfied ratings sending the case back")
    failed_reviews: int = _n("核查不通过 failed reviews (kind review_fail)")
    returns: int = _n("退单 returns by the unit (kind return)")
    improper_returns: int = _n("不当退单 returns the street upheld against the unit")
    extensions: int = _n("延期 extensions approved")
    suspensions: int = _n("挂起 suspensions approved")
    supervision_orders: int = _n("督办 supervision orders issued to the unit")
    key_supervision_orders: int = _n("重点督办 of which key supervision")
    supervision_answered_on_time: int
    supervision_answered_late: int
    supervision_overdue: int
    reminders: int = _n("催办 reminders")
    criticism_notices: int = _n("通报批评 criticism notices")
    breaches: int = _n("deadline breaches while the unit led")
    escalations: int = _n("escalations while the unit led")
    supervised: int = _n("cases put under supervision while the unit led")
    response_rate: float | None = _n("响应率 responded_on_time / (receipts - unanswered_withdrawn)")
    resolution_rate: float | None = _n("解决率 resolved / (resolved + closed_other + returned_unresolved)")
    satisfaction_rate: float | None = _n("满意率 (satisfied + basically_satisfied) / rated")


class SlaStatsPublic(BaseModel):
    date_from: date | None
    date_to: date | None
    units: list[UnitStatsPublic]
    total: UnitStatsPublic


# --- organisation -------------------------------------------------------------------------------

class CallerPublic(BaseModel):
    id: str
    role: str
    unit: str | None
    name: str
    case_number: str | None = None


class UnitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_CLEAN)]
    kind: UnitKind
    parent: Code | None = None
    boundary_wkt: Annotated[str, StringConstraints(max_length=100_000, pattern=_CLEAN)] | None = None


class UnitPublic(_Out):
    code: str
    name: str
    kind: str
    parent: str | None
    has_boundary: bool = False
    #: gone from the organisation files (撤销): kept for the cases and users that name it
    retired: bool = False


class UnitsPublic(BaseModel):
    data: list[UnitPublic]


class OrgChangePublic(_Out):
    """One load of the organisation files that changed something (a diff: added, renamed, moved,
    reshaped, retired, restored units; addresses added, changed, removed)."""

    id: int
    at: datetime
    actor: str
    source: str
    summary: str
    diff: dict[str, Any]


class OrgChangesPublic(BaseModel):
    data: list[OrgChangePublic]
    count: int


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_CLEAN)]
    role: Role
    unit: Code | None = None
    phone: Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9+\- ()]*$")] | None = None


class UserPublic(_Out):
    id: str
    name: str
    role: str
    unit: str | None
    active: bool
    phone: str | None = None


class UsersPublic(BaseModel):
    data: list[UserPublic]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Code
    label: Annotated[str, StringConstraints(max_length=100, pattern=_CLEAN)] = ""
    expires_at: AwareDatetime | None = Field(None, description="the key stops working at this instant")
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650,
                                                 description="or: the key stops working after N days")] = None

    @model_validator(mode="after")
    def _one_expiry(self) -> "ApiKeyCreate":
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        return self


class ApiKeyIssued(BaseModel):
    user_id: str
    label: str
    expires_at: datetime | None = None
    token: str = Field(description="shown once; gridflow stores only its hash")


class ApiKeyPublic(_Out):
    id: int
    user_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]


# --- operations ---------------------------------------------------------------------------------

class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    #: Why it is not ``ok``: database_unavailable, database_locked, writes_refused, runner_failing,
    #: runner_stopped, timers_overdue (empty when ok).
    reasons: list[str] = []
    database: Literal["ok", "unavailable"]
    #: Why a write probe failed (the database's own words), when it did.
    write_error: str | None = None
    runner: dict[str, Any] | None
    timers: dict[str, Any] | None = None
    #: Years the calendars only estimate (no official 放假调休 arrangement, no override; docs/calendars.md).
    calendar_estimated_years: list[int] = []
    version: str


def _label(label) -> Label:
    return Label(zh=label.zh, en=label.en)


def workflow_summary(defn, versions: list[int]) -> WorkflowSummary:
    return WorkflowSummary(name=defn.name, version=defn.version, versions=versions, label=_label(defn.label),
                           description=defn.description)


def workflow_public(defn, source_yaml: str | None) -> WorkflowPublic:
    """A definition as data: states with their timers, actions with roles and fields."""
    states = [StatePublic(
        name=s.name, label=_label(s.label), stage=s.stage, final=s.final, pauses_sla=s.pauses_sla,
        holder_roles=list(s.holder_roles), outcome=s.outcome,
        timers=[TimerPublic(name=t.name, label=_label(t.label), duration=str(t.duration), calendar=t.calendar,
                            warn_at=list(t.warn_at), repeat=str(t.repeat) if t.repeat else None,
                            category_limit=t.category_limit,
                            on_breach={"escalate": t.on_breach.escalate, "supervise": t.on_breach.supervise,
                                       "action": t.on_breach.action, "notify": list(t.on_breach.notify)})
                for t in s.timers]) for s in defn.states.values()]
    actions = [ActionPublic(
        name=a.name, label=_label(a.label), sources=list(a.sources), destinations=list(a.destinations),
        roles=list(a.roles), guards=list(a.guards),
        fields=[FieldPublic(name=f.name, type=f.type, required=f.required, choices=list(f.choices),
                            label=_label(f.label) if f.label else None) for f in a.fields])
        for a in defn.actions.values()]
    return WorkflowPublic(
        name=defn.name, version=defn.version, label=_label(defn.label), description=defn.description,
        initial=defn.initial, calendar=defn.calendar, roles=list(defn.roles),
        stages={k: _label(v) for k, v in defn.stages.items()}, escalation=list(defn.escalation.levels),
        states=states, actions=actions, source_yaml=source_yaml)
