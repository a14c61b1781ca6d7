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
    limits: Any = None  # the workflow's Limits
    #: The working seconds an extension of the given duration would add to the deadline it extends.
    extension_seconds: Callable[[str], float] | None = None


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


def _suspension_pending(ctx: GuardContext) -> GuardResult:
    return bool(ctx.case.data.get("suspension_requested")) or "no suspension request is pending"


def _no_suspension_pending(ctx: GuardContext) -> GuardResult:
    return not ctx.case.data.get("suspension_requested") or "a suspension request is already pending"


def _extension_within_limits(ctx: GuardContext) -> GuardResult:
    """The workflow's cap on extensions: how many may be approved, and how much time they add altogether.

    Counts what was approved (the engine keeps it in case data) plus the extension asked for now: the
    payload's ``duration`` when requesting, the pending ``requested_extension`` when approving.
    """
    limits = getattr(ctx.limits, "extensions", None)
    if limits is None:
        return True
    data = ctx.case.data
    count = int(data.get("extensions_approved") or 0)
    if limits.max_count is not None and count >= limits.max_count:
        return (f"{count} extension(s) already approved; this workflow allows at most {limits.max_count}: "
                "explain in writing and park the case instead (挂账)")
    requested = ctx.payload.get("duration") or (data.get("requested_extension")
                                                if data.get("extension_requested") else None)
    if limits.max_total is None or not requested or ctx.extension_seconds is None:
        return True
    used = float(data.get("extension_total_s") or 0.0)
    cap = ctx.extension_seconds(str(limits.max_total))
    asked = ctx.extension_seconds(str(requested))
    if used + asked > cap + 1e-3:
        return (f"extensions may add at most {limits.max_total} altogether; {round(used / 3600, 2)} h "
                f"already granted, {requested} more would exceed it")
    return True


def _is_reporter(ctx: GuardContext) -> GuardResult:
    if ctx.actor.role == "system":
        return True
    return ctx.actor.id == ctx.case.reporter or "only the person who reported the case may do this"


def _own_case_if_resident(ctx: GuardContext) -> GuardResult:
    """Residents act only on cases they reported; staff act on behalf of residents (回访)."""
    if ctx.actor.role != "resident":
        return True
    return ctx.actor.id == ctx.case.reporter or "residents may only act on cases they reported"


def _can_escalate(ctx: GuardContext) -> GuardResult:
    return ctx.case.escalation_level < ctx.case.escalation_top or "the case is already at the top level"


def _not_self_merge(ctx: GuardContext) -> GuardResult:
    target = ctx.payload.get("duplicate_of")
    return target != ctx.case.number or "a case cannot be merged into itself"


def default_guards() -> GuardRegistry:
    return GuardRegistry(
        {
            "extension_pending": _extension_pending,
            "no_extension_pending": _no_extension_pending,
            "not_overdue": _not_overdue,
            "extension_within_limits": _extension_within_limits,
            "suspension_pending": _suspension_pending,
            "no_suspension_pending": _no_suspension_pending,
            "is_reporter": _is_reporter,
            "own_case_if_resident": _own_case_if_resident,
            "can_escalate": _can_escalate,
            "not_self_merge": _not_self_merge,
        }
    )
