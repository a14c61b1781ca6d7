"""HTML forms from a workflow's action fields, and the posted form back into an action payload.

The form only shapes input: every check (required fields, choices, durations, units in reach) stays with
the service (:func:`gridflow.engine.payload.validate_payload`, ``act_as``), so the console refuses
exactly what the API refuses, with the same message. Empty inputs are left out of the payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from ..engine.calendar import LOCAL_ZONE
from ..engine.definition import ActionDef, FieldSpec
from ..service.auth import Caller
from ..service.context import Services
from ..service.scopes import may_name_unit
from .console_text import Text

#: Duration units a picker offers: working hours, working days, hours, days, minutes.
DURATION_UNITS: Sequence[tuple[str, str, str]] = (
    ("wd", "工作日", "working days"), ("wh", "工作小时", "working hours"), ("h", "小时", "hours"),
    ("d", "天", "days"), ("m", "分钟", "minutes"))
#: The order unit kinds are offered in a unit picker.
KIND_ORDER = ("department", "district", "street", "community", "grid", "city")
KIND_LABELS = {"department": ("职能部门", "Departments"), "district": ("区县", "Districts"),
               "street": ("街道", "Streets"), "community": ("社区", "Communities"), "grid": ("网格", "Grids"),
               "city": ("市级", "City")}


@dataclass(frozen=True)
class Widget:
    """One input of an action form, as the template draws it."""

    name: str
    label: str
    kind: str  # textarea, input, number, select, multiselect, duration, datetime
    required: bool
    #: (group label, [(value, label)]) for selects; one group with an empty label when ungrouped.
    groups: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    step: str = "1"


@dataclass(frozen=True)
class ActionForm:
    name: str
    label: str
    widgets: list[Widget]


def _unit_groups(svc: Services, caller: Caller, text: Text) -> list[tuple[str, list[tuple[str, str]]]]:
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for unit in svc.units.all():
        if may_name_unit(svc, caller, unit.code):
            by_kind.setdefault(unit.kind, []).append((unit.code, unit.name))
    return [(text._pick(KIND_LABELS.get(kind, (kind, kind))), sorted(by_kind[kind], key=lambda u: u[0]))
            for kind in KIND_ORDER if kind in by_kind]


def _widget(svc: Services, caller: Caller, spec: FieldSpec, text: Text) -> Widget:
    label, req = text.field(spec), spec.required
    if spec.type == "text":
        return Widget(spec.name, label, "textarea", req)
    if spec.type in ("unit", "units"):
        return Widget(spec.name, label, "select" if spec.type == "unit" else "multiselect", req,
                      _unit_groups(svc, caller, text))
    if spec.type == "choice":
        options = [(c, c.replace("_", " ")) for c in spec.choices]
        return Widget(spec.name, label, "select", req, [("", options)])
    if spec.type == "boolean":
        return Widget(spec.name, label, "select", req, [("", [("true", text("yes")), ("false", text("no"))])])
    if spec.type in ("integer", "number"):
        return Widget(spec.name, label, "number", req, step="1" if spec.type == "integer" else "any")
    if spec.type == "duration":
        units = [(code, zh if text.lang == "zh" else en) for code, zh, en in DURATION_UNITS]
        return Widget(spec.name, label, "duration", req, [("", units)])
    if spec.type == "datetime":
        return Widget(spec.name, label, "datetime", req)
    return Widget(spec.name, label, "input", req)


def action_forms(svc: Services, caller: Caller, defn: Any, allowed: Sequence[str],
                 text: Text) -> list[ActionForm]:
    """One form per action the caller may take now, in the order the engine gives them."""
    forms = []
    for name in allowed:
        act: ActionDef | None = defn.actions.get(name)
        if act is None:
            continue
        widgets = [_widget(svc, caller, spec, text) for spec in act.fields]
        widgets.append(Widget("comment", text("comment"), "textarea", False))
        forms.append(ActionForm(name, text.label(act.label, name), widgets))
    return forms


def _number(raw: str, integer: bool) -> Any:
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        return raw  # the service says what is wrong with it


def _datetime(raw: str) -> str:
    """``datetime-local`` input (no zone) read on the dispatch centre's wall clock."""
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return (at if at.tzinfo else at.replace(tzinfo=LOCAL_ZONE)).isoformat()


def _value(spec: FieldSpec, form: Mapping[str, list[str]]) -> Any:
    values = [v.strip() for v in form.get(spec.name, []) if v.strip()]
    if spec.type == "units":
        return values or None
    raw = values[0] if values else ""
    if spec.type == "duration":
        unit = (form.get(f"{spec.name}__unit") or [""])[0].strip()
        return f"{raw}{unit}" if raw else None
    if not raw:
        return None
    if spec.type == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    if spec.type in ("integer", "number"):
        return _number(raw, spec.type == "integer")
    if spec.type == "datetime":
        return _datetime(raw)
    return raw


def payload_from_form(act: ActionDef | None, form: Mapping[str, list[str]]) -> dict[str, Any]:
    """The action's payload from a posted form: declared fields converted, empty ones left out."""
    payload: dict[str, Any] = {}
    for spec in act.fields if act is not None else ():
        value = _value(spec, form)
        if value is not None:
            payload[spec.name] = value
    comment = " ".join(v.strip() for v in form.get("comment", []) if v.strip())
    if comment:
        payload["comment"] = comment
    return payload
