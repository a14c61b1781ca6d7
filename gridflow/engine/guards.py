"""Named guards: the conditions an action needs beyond state, role and payload.

A guard is a pure function of a :class:`GuardContext` that returns ``True`` to
allow, or ``False`` / a reason string to refuse. Definitions refer to guards by
name; validation rejects names that are not registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

GuardResult = bool | str
GuardFn = Callable[["GuardContext"], GuardResult]


@dataclass(frozen=True, slots=True)
class GuardContext:
    case: Any  # CaseSnapshot; typed loosely to keep this module free of cycles
    action: str
    actor: Any  # Actor
    payload: Mapping[str, Any]
    now: datetime


class GuardRegistry:
    def __init__(self, guards: Mapping[str, GuardFn] | None = None) -> None:
        self._guards: dict[str, GuardFn] = dict(guards or {})

    def register(self, name: str, fn: GuardFn | None = None):
        def deco(f: GuardFn) -> GuardFn:
            self._guards[name] = f
            return f

        return deco(fn) if fn is not None else deco

    def __contains__(self, name: str) -> bool:
        return name in self._guards

    def names(self) -> list[str]:
        return sorted(self._guards)

    def check(self, name: str, ctx: GuardContext) -> str | None:
        """None when the guard passes, else the reason it refused."""
        result = self._guards[name](ctx)
        if result is True:
            return None
        return result if isinstance(result, str) and result else f"guard {name!r} refused"

    def copy(self) -> "GuardRegistry":
        return GuardRegistry(self._guards)


def _extension_pending(ctx: GuardContext) -> GuardResult:
    return bool(ctx.case.data.get("extension_requested")) or "no extension request is pending"


def _no_extension_pending(ctx: GuardContext) -> GuardResult:
    return not ctx.case.data.get("extension_requested") or "an extension request is already pending"


def _not_overdue(ctx: GuardContext) -> GuardResult:
    """Extensions must be asked for before the deadline passes (local 12345 rules)."""
    for d in ctx.case.deadlines:
        if d.is_running and d.due_at is not None and ctx.now >= d.due_at:
            return f"deadline {d.id} passed at {d.due_at.isoformat()}; too late to ask for more time"
    return True


#: The identity of the resident holding a case's token: one of its own per case, never the staff member
#: who logged the report for them.
RESIDENT_PREFIX = "resident:"


def resident_identity(number: str) -> str:
    return f"{RESIDENT_PREFIX}{number}"


def _reported_it(ctx: GuardContext) -> bool:
    if ctx.actor.id.startswith(RESIDENT_PREFIX):
        return ctx.actor.role == "resident" and ctx.actor.id == resident_identity(ctx.case.number)
    return ctx.actor.id == ctx.case.reporter


def _is_reporter(ctx: GuardContext) -> GuardResult:
    if ctx.actor.role == "system":
        return True
    return _reported_it(ctx) or "only the person who reported the case may do this"


def _own_case_if_resident(ctx: GuardContext) -> GuardResult:
    """Residents act only on cases they reported; staff act on behalf of residents (回访)."""
    if ctx.actor.role != "resident":
        return True
    return _reported_it(ctx) or "residents may only act on cases they reported"


#: Case data the service keeps when it routes an escalation: the escalation unit, then every unit above it.
ESCALATION_UNITS = "escalation_units"


def _at_escalation_unit(ctx: GuardContext) -> GuardResult:
    """Upper-level actions (改派, 提级办理, 重办 from above) are for the unit the case was escalated to, or a
    unit above it. The service records that chain in the case data as it routes the escalation, so the
    guard needs no unit tree."""
    if ctx.actor.role == "system":
        return True
    chain = ctx.case.data.get(ESCALATION_UNITS) or ()
    if not chain:
        return "the case has not been escalated to any unit: this is for the unit it is escalated to"
    if ctx.actor.unit is not None and ctx.actor.unit in chain:
        return True
    return f"only the escalation unit {chain[0]} or a unit above it may do this"


def _can_escalate(ctx: GuardContext) -> GuardResult:
    return ctx.case.escalation_level < ctx.case.escalation_top or "the case is already at the top level"


def _own_unit_holds(ctx: GuardContext) -> GuardResult:
    """For what only the unit holding the case may do (a community reworking a case it handled itself)."""
    if ctx.actor.role == "system":
        return True
    return (ctx.actor.unit is not None and ctx.actor.unit == ctx.case.holder_unit) \
        or f"only the unit holding the case ({ctx.case.holder_unit}) may do this"


def _not_self_merge(ctx: GuardContext) -> GuardResult:
    target = ctx.payload.get("duplicate_of")
    return target != ctx.case.number or "a case cannot be merged into itself"


def default_guards() -> GuardRegistry:
    return GuardRegistry(
        {
            "extension_pending": _extension_pending,
            "no_extension_pending": _no_extension_pending,
            "not_overdue": _not_overdue,
            "is_reporter": _is_reporter,
            "own_case_if_resident": _own_case_if_resident,
            "can_escalate": _can_escalate,
            "not_self_merge": _not_self_merge,
            "at_escalation_unit": _at_escalation_unit,
            "own_unit_holds": _own_unit_holds,
        }
    )
