"""Supervision orders (督办单), reminders (催办) and criticism notices (通报批评).

督办 is an order, not a flag: it names the unit held responsible (the holder when it is issued), has a
level (一般督办, 重点督办) whose reply limit runs as a case-level deadline, and is answered by that unit.
An unanswered order breaches like any deadline (``SupervisionOrderOverdue``, then the ``on_overdue``
policy). A breach the definition takes seriously — of a timer that escalates or supervises, or of an
order or a co-handling part — is followed by a reminder the next working day (``reminder_after``) and,
while that deadline is still running overdue ``notice_after`` later, by a criticism notice. Both are
durable firings of the breached deadline, so they go stale as soon as it stops (the case moved on).

The engine calls in through a few hooks; everything here works on the engine's scratch copy of a
decision (``w``), so an order is written in the same decision as the action or breach that caused it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from .case import Actor, Deadline, TimerSpec
from .definition import CASE_LEVEL, BreachPolicy, Label, TimerDef

REMINDER = "reminder"
NOTICE = "notice"
#: Firings of a breached deadline beyond its warnings and breaches.
FOLLOW_UPS = frozenset({REMINDER, NOTICE})
ORDERS = "orders"  # case data key: order id -> the order
FOLLOW_UP_DATA = "follow_ups"  # case data key: deadline id -> {reminded_at, noticed_at}
OPEN, ANSWERED, CLOSED = "open", "answered", "closed"
_SYSTEM = Actor.system()


def open_orders(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    orders = data.get(ORDERS) or {}
    return {k: o for k, o in orders.items() if isinstance(o, Mapping) and o.get("status") == OPEN}


def on_time(d: Deadline | None, now) -> bool:
    return d is not None and d.breaches == 0 and now <= d.due_at


def copy_section(w: Any, key: str) -> dict[str, dict[str, Any]]:
    """A writable copy of a case data section of records (the snapshot's own stays untouched)."""
    data = w.mutable_data()
    section = {k: dict(v) for k, v in (data.get(key) or {}).items()}
    data[key] = section
    return section


class Orders:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        defn = engine.definition
        self.sup = defn.supervision
        self.calendar = self.sup.calendar or defn.calendar
        self.level_timers: dict[str, TimerDef] = {
            name: TimerDef(f"supervision_{name}", Label(f"{lvl.label.zh}答复时限", f"{lvl.label.en} reply"),
                           lvl.reply_within, self.calendar if lvl.reply_within.is_working_time else "24x7",
                           on_breach=BreachPolicy(escalate=self.sup.on_overdue.escalate,
                                                                   notify=self.sup.on_overdue.notify))
            for name, lvl in self.sup.levels.items()
        }
        self.order_timers = frozenset(t.name for t in self.level_timers.values())

    @property
    def timers(self) -> dict[tuple[str, str], TimerDef]:
        return {(CASE_LEVEL, t.name): t for t in self.level_timers.values()}

    # --- issuing and answering ----------------------------------------------------------------

    def issue(self, w: Any, actor: Actor, payload: Mapping[str, Any], source: str | None = None) -> None:
        """An order to the holder (no-op in a workflow without supervision levels)."""
        levels = self.sup.levels
        if not levels:
            return
        level = payload.get("level")
        if level not in levels:
            level = "general" if "general" in levels else next(iter(levels))
        tdef = self.level_timers[level]
        self.engine._start(w, CASE_LEVEL, tdef, str(tdef.duration), actor)
        did = f"{tdef.name}.{w.seq}"
        due = w.deadlines[did].due_at.isoformat()
        orders = copy_section(w, ORDERS)
        oid = f"SO-{len(orders) + 1}"
        instructions = payload.get("instructions") or (f"{source} 超期" if source else "")
        orders[oid] = {"level": level, "unit": w.holder, "status": OPEN, "issued_at": w.now.isoformat(),
                       "issued_by": actor.id, "due_at": due, "deadline": did, "instructions": instructions,
                       **({"source": source} if source else {})}
        w.event("SupervisionOrderIssued", actor, order=oid, level=level, unit=w.holder, due_at=due,
                instructions=instructions)
        lvl = levels[level]
        w.notes.append(self.engine._notification(
            "order_issued", w.case.number, w.holder, {"order": oid, "level": level},
            self.engine._holder_roles(w.state), order=oid, level=level, level_label=lvl.label.zh,
            unit=w.holder, due=due))

    def apply(self, w: Any, act: Any, actor: Actor, payload: Mapping[str, Any]) -> None:
        if act.kind != "supervision_reply":
            return
        current = open_orders(w.data if w.data is not None else w.case.data)
        oid = payload.get("order") or (next(iter(current)) if len(current) == 1 else None)
        if oid not in current:
            return  # the guard (supervision_order_open) refuses this before it gets here
        orders = copy_section(w, ORDERS)
        order = orders[oid]
        d = w.deadlines.get(order.get("deadline", ""))
        timely = on_time(d, w.now)
        order.update(status=ANSWERED, answered_at=w.now.isoformat(), answered_by=actor.id,
                     reply=payload.get("reply"), on_time=timely)
        if d is not None:
            self.engine._stop(w, d, actor, "answered")
        w.event("SupervisionOrderAnswered", actor, order=oid, unit=order.get("unit"), on_time=timely)

    # --- breaches, reminders, notices ---------------------------------------------------------

    def breached(self, w: Any, d: Deadline, tdef: TimerDef, timer: TimerSpec) -> None:
        """After a breach of ``d`` (as it was before the breach): the order it concerns, a system order
        when its policy supervises, and the reminder of its first breach."""
        if d.breaches:
            return  # a repeat breach: its order, reminder and notice were planned at the first one
        order = self._order_of(w, d.id)
        if order is not None:
            w.event("SupervisionOrderOverdue", _SYSTEM, order=order[0], unit=order[1].get("unit"))
        policy = tdef.on_breach
        if policy.supervise and d.state != CASE_LEVEL:
            self.issue(w, _SYSTEM, {"level": "general"}, source=d.id)
        if self._reminded(d, tdef):
            at = self.sup.reminder_after.due(timer.due_at, self.engine.calendars.get(self.calendar))
            w.schedule.append(TimerSpec(d.id, REMINDER, 1, d.generation, at))

    @staticmethod
    def _reminded(d: Deadline, tdef: TimerDef) -> bool:
        """Whether a breach of ``d`` is followed by 催办 and 通报批评: an order, a part, or a timer whose
        breach escalates or supervises."""
        return d.state == CASE_LEVEL or tdef.on_breach.escalate or tdef.on_breach.supervise

    def plan(self, w: Any, d: Deadline) -> None:
        """Re-plan a pending reminder or notice of a breached deadline running again (after a pause)."""
        if not d.breaches or d.run_since is None:
            return
        record = (w.data if w.data is not None else w.case.data).get(FOLLOW_UP_DATA, {}).get(d.id, {})
        cal = self.engine.calendars.get(self.calendar)
        if not record.get("reminded_at"):
            tdef = self.engine._timers.get((d.state, d.timer))
            if tdef is not None and self._reminded(d, tdef):
                at = max(self.sup.reminder_after.due(d.due_at, cal), w.now)
                w.schedule.append(TimerSpec(d.id, REMINDER, 1, d.generation, at))
        elif not record.get("noticed_at"):
            at = max(self.sup.notice_after.due(datetime.fromisoformat(record["reminded_at"]), cal), w.now)
            w.schedule.append(TimerSpec(d.id, NOTICE, 1, d.generation, at))

    def follow_up(self, w: Any, d: Deadline, tdef: TimerDef, timer: TimerSpec):
        """Fire a reminder or a notice of ``d`` (running, current generation); stale ones say nothing."""
        data = w.case.data
        record = (data.get(FOLLOW_UP_DATA) or {}).get(d.id) or {}
        if not d.breaches:
            return w.decision()
        if timer.kind == REMINDER:
            if record.get("reminded_at"):
                return w.decision()
            self._record(w, d.id, "reminded_at")
            w.event("ReminderIssued", _SYSTEM, deadline=d.id, timer=d.timer, unit=self.unit_of(w, d))
            at = self.sup.notice_after.due(timer.due_at, self.engine.calendars.get(self.calendar))
            w.schedule.append(TimerSpec(d.id, NOTICE, 1, d.generation, at))
            self._note(w, "reminded", d, tdef)
        else:
            if not record.get("reminded_at") or record.get("noticed_at"):
                return w.decision()
            self._record(w, d.id, "noticed_at")
            w.event("CriticismNoticeIssued", _SYSTEM, deadline=d.id, timer=d.timer, unit=self.unit_of(w, d))
            self._note(w, "criticised", d, tdef)
        return w.decision()

    def _record(self, w: Any, did: str, key: str) -> None:
        section = copy_section(w, FOLLOW_UP_DATA)
        section.setdefault(did, {})[key] = w.now.isoformat()

    def _note(self, w: Any, kind: str, d: Deadline, tdef: TimerDef) -> None:
        unit = self.unit_of(w, d)
        roles = ("department_handler",) if unit != w.holder else self.engine._holder_roles(
            d.state if d.state != CASE_LEVEL else w.state)
        w.notes.append(self.engine._notification(kind, w.case.number, unit, {"deadline": d.id}, roles,
                                                 timer=tdef.label.zh, timer_en=tdef.label.en, unit=unit))

    def unit_of(self, w: Any, d: Deadline) -> str | None:
        """The unit answerable for a deadline: an order's unit, a part's unit, else the holder."""
        data = w.data if w.data is not None else w.case.data
        order = self._order_of(w, d.id)
        if order is not None:
            return order[1].get("unit")
        for unit, part in (data.get("parts") or {}).items():
            if isinstance(part, Mapping) and d.id in (part.get("sign_deadline"), part.get("answer_deadline")):
                return unit
        return w.holder

    def _order_of(self, w: Any, did: str) -> tuple[str, Mapping[str, Any]] | None:
        data = w.data if w.data is not None else w.case.data
        for oid, order in (data.get(ORDERS) or {}).items():
            if isinstance(order, Mapping) and order.get("deadline") == did:
                return oid, order
        return None

    def case_closed(self, w: Any, actor: Actor) -> None:
        """Closing the case stops every case-level deadline still running; open orders lapse."""
        if open_orders(w.data if w.data is not None else w.case.data):
            for order in copy_section(w, ORDERS).values():
                if order.get("status") == OPEN:
                    order.update(status=CLOSED, closed_at=w.now.isoformat())
        for d in [d for d in w.deadlines.values() if d.state == CASE_LEVEL]:
            self.engine._stop(w, d, actor, "case_closed")

