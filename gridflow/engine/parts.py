"""Lead and co-handling departments (主办/协办).

A dispatch may name co-handlers beside the lead: each gets a part in ``data["parts"][unit]`` with two
case-level deadlines counted from dispatch — sign for it (``sign_within``) and answer it
(``answer_within``) — that survive the lead's state moves and stop when the case closes. A part goes
dispatched → signed → answered, or is closed by a dispatcher; the lead's final reply waits (guard
``parts_settled``) until every part is answered or closed. Parts change no state: they are internal
actions of the co-handling unit, who sees the case while its part is open (the ``co_units`` column).
"""

from __future__ import annotations

from typing import Any, Mapping

from .case import Actor
from .definition import CASE_LEVEL, Label, TimerDef
from .orders import copy_section, on_time

PARTS = "parts"  # case data key: unit code -> its part
DISPATCHED, SIGNED, ANSWERED, CLOSED = "dispatched", "signed", "answered", "closed"
#: A part in one of these is still the co-handler's to work (and on its worklist).
OPEN_STATUSES = frozenset({DISPATCHED, SIGNED})
CO_HANDLERS_FIELD = "co_handlers"


def open_parts(data: Mapping[str, Any]) -> list[str]:
    """The units whose part is still open (signed for or not), sorted: the case is on their worklist."""
    parts = data.get(PARTS) or {}
    if not isinstance(parts, Mapping):
        return []
    return sorted(u for u, p in parts.items() if isinstance(p, Mapping) and p.get("status") in OPEN_STATUSES)


class Parts:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        defn = engine.definition
        co = defn.co_handling
        self.sign: TimerDef | None = None
        self.answer: TimerDef | None = None
        if co is not None:
            cal = co.calendar or defn.calendar
            self.sign = TimerDef("co_sign", Label("协办签收时限", "Co-handling sign-for deadline"),
                                 co.sign_within, cal if co.sign_within.is_working_time else "24x7",
                                 on_breach=co.on_breach)
            self.answer = TimerDef("co_answer", Label("协办答复时限", "Co-handling answer deadline"),
                                   co.answer_within, cal if co.answer_within.is_working_time else "24x7",
                                   on_breach=co.on_breach)

    @property
    def timers(self) -> dict[tuple[str, str], TimerDef]:
        return {(CASE_LEVEL, t.name): t for t in (self.sign, self.answer) if t is not None}

    def apply(self, w: Any, act: Any, actor: Actor, payload: Mapping[str, Any]) -> None:
        """What an action does to the parts: open them on dispatch, sign, answer, close; or a 会商."""
        if self.sign is None:
            return
        kind = act.kind
        if payload.get(CO_HANDLERS_FIELD):
            self._open(w, actor, payload[CO_HANDLERS_FIELD])
        elif kind == "co_sign_for":
            self._settle(w, actor, actor.unit, SIGNED, "sign_deadline", "CoHandlingSignedFor")
        elif kind == "co_answer":
            self._settle(w, actor, actor.unit, ANSWERED, "answer_deadline", "CoHandlingAnswered",
                         answer=payload.get("answer"))
        elif kind == "co_close":
            self._close(w, actor, payload.get("unit"), payload.get("reason"), by_unit=actor.unit)
        elif kind == "consult":
            w.event("ConsultationHeld", actor, participants=list(payload.get("participants") or ()),
                    summary=payload.get("summary"))

    def _open(self, w: Any, actor: Actor, units: list[str]) -> None:
        assert self.sign is not None and self.answer is not None
        current = (w.data if w.data is not None else w.case.data).get(PARTS) or {}
        for unit in units:
            if unit == w.holder or (current.get(unit) or {}).get("status") in OPEN_STATUSES:
                continue  # the lead has no part; an open part stays as it is
            engine, lead = self.engine, w.holder
            w.holder = unit  # the part's deadlines run on the co-handler's own calendar, if it has one
            try:
                engine._start(w, CASE_LEVEL, self.sign, str(self.sign.duration), actor)
                sign = w.deadlines[f"{self.sign.name}.{w.seq}"]
                engine._start(w, CASE_LEVEL, self.answer, str(self.answer.duration), actor)
                answer = w.deadlines[f"{self.answer.name}.{w.seq}"]
            finally:
                w.holder = lead
            parts = copy_section(w, PARTS)
            due = answer.due_at.isoformat()
            parts[unit] = {"status": DISPATCHED, "dispatched_at": w.now.isoformat(),
                           "dispatched_by": actor.id, "lead": w.holder, "sign_deadline": sign.id,
                           "sign_due": sign.due_at.isoformat(), "answer_deadline": answer.id,
                           "answer_due": due}
            w.event("CoHandlingOpened", actor, unit=unit, part_role="co", due_at=due,
                    sign_due=sign.due_at.isoformat(), lead=w.holder)
            w.notes.append(engine._notification("co_handling", w.case.number, unit, {"unit": unit},
                                                ("department_handler",), unit=unit, due=due))

    def _settle(self, w: Any, actor: Actor, unit: str | None, status: str, deadline_key: str, event: str,
                **extra: Any) -> None:
        parts = copy_section(w, PARTS)
        part = parts.get(unit or "")
        if part is None:
            return  # the guard refuses this before it gets here
        d = w.deadlines.get(part.get(deadline_key, ""))
        timely = on_time(d, w.now)
        part.update(status=status, **{f"{status}_at": w.now.isoformat(), f"{status}_by": actor.id,
                                      f"{status}_on_time": timely}, **extra)
        if d is not None:
            self.engine._stop(w, d, actor, status)
        w.event(event, actor, unit=unit, on_time=timely)

    def _close(self, w: Any, actor: Actor, unit: str | None, reason: str | None, by_unit: str | None) -> None:
        parts = copy_section(w, PARTS)
        part = parts.get(unit or "")
        if part is None or part.get("status") not in OPEN_STATUSES:
            return
        part.update(status=CLOSED, closed_at=w.now.isoformat(), closed_by=actor.id, close_reason=reason)
        for key in ("sign_deadline", "answer_deadline"):
            d = w.deadlines.get(part.get(key, ""))
            if d is not None:
                self.engine._stop(w, d, actor, "part_closed")
        w.event("CoHandlingClosed", actor, unit=unit, by_unit=by_unit, reason=reason)

    def case_closed(self, w: Any, actor: Actor) -> None:
        """A case that closes closes the parts still open (their deadlines stop with the case's)."""
        for unit in open_parts(w.data if w.data is not None else w.case.data):
            self._close(w, actor, unit, "case closed", by_unit=None)
