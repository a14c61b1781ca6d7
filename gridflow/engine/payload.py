"""Checks an action's payload against the fields its definition declares, and bounds free-form JSON.

Every value a caller can hand in lands in a hash-chained history that must stay readable (serialised,
masked, rendered) for as long as the case lives, so the bounds are decided here once: how deep and
how big free-form JSON may be (``JsonBounds``, ``json_problem``) and what an attachment is
(``clean_attachments``: metadata only, the same shape the API's ``Attachment`` declares).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

from .definition import ActionDef, FieldSpec
from .durations import Duration, DurationError
from .errors import PayloadInvalid

_MAX_TEXT = 4000
#: Whole numbers a JSON reader in any language keeps exact (JavaScript's safe integers).
MAX_INTEGER = 2**53 - 1


# --- bounds on free-form JSON ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class JsonBounds:
    """How far free-form JSON may go: containers nested, values in all, characters as JSON text."""

    depth: int
    items: int
    size: int


#: An action payload or a report's free-form data, as a caller hands it in.
PAYLOAD_BOUNDS = JsonBounds(depth=6, items=1000, size=256 * 1024)
#: One history event's data as written (a payload nests inside it, so the bounds are wider).
EVENT_BOUNDS = JsonBounds(depth=12, items=5000, size=512 * 1024)
_CONTAINER_COST = 2  # brackets
_SCALAR_COST = 24  # a number, true/false/null and its separator, at most


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains text that is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, int):
        return None if abs(value) <= 2**63 else "is a number too large to store"
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number (not NaN or Infinity)"
    return f"is not JSON data ({type(value).__name__})"


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def json_problem(value: Any, bounds: JsonBounds, where: str = "") -> tuple[str, str] | None:
    """Where and what is wrong if ``value`` is not plain JSON within ``bounds``, else None.

    Iterative, so a hostile nesting can't exhaust the stack while it is being measured; it stops at
    the first problem and never walks more than ``bounds.items`` values.
    """
    stack: list[tuple[str, Any, int]] = [(where, value, 0)]
    items = size = 0
    while stack:
        path, v, depth = stack.pop()
        items += 1
        if items > bounds.items:
            return where or "(payload)", f"has more than {bounds.items} values in all"
        if isinstance(v, Mapping) or isinstance(v, (list, tuple)):
            if depth >= bounds.depth:
                return path or "(payload)", f"nests deeper than {bounds.depth} levels"
            size += _CONTAINER_COST
            if items + len(v) > bounds.items:
                return where or "(payload)", f"has more than {bounds.items} values in all"
            if isinstance(v, Mapping):
                for k, child in v.items():
                    if not isinstance(k, str):
                        return path or "(payload)", f"has a key that is not text ({type(k).__name__})"
                    if _scalar_problem(k):
                        return path or "(payload)", f"has a key that {_scalar_problem(k)}"
                    size += len(k) + 4
                    stack.append((_path(path, k), child, depth + 1))
            else:
                stack.extend((_path(path, i), child, depth + 1) for i, child in enumerate(v))
        else:
            problem = _scalar_problem(v)
            if problem:
                return path or "(payload)", problem
            size += len(v) + 3 if isinstance(v, str) else _SCALAR_COST
        if size > bounds.size:
            return where or "(payload)", f"is larger than {bounds.size} characters as JSON"
    return None


def check_json(value: Any, bounds: JsonBounds, where: str = "", *, what: str = "data") -> None:
    """PayloadInvalid naming the field if ``value`` is not plain JSON within ``bounds``."""
    problem = json_problem(value, bounds, where)
    if problem is not None:
        field, message = problem
        raise PayloadInvalid(f"{what} is refused: {field} {message}", fields={field: message})


# --- attachments: metadata of files stored elsewhere ------------------------------------------

MAX_ATTACHMENTS = 20
MAX_ATTACHMENT_BYTES = 10**12
#: The text members of an attachment and their longest length (the API's ``Attachment`` declares the same).
ATTACHMENT_TEXT = {"name": 200, "url": 1000, "content_type": 100}
_OPTIONAL_MEMBERS = frozenset({"url", "content_type", "size"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _attachment_member_problem(key: str, value: Any) -> str | None:
    if key == "size":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ATTACHMENT_BYTES:
            return f"must be a whole number of bytes from 0 to {MAX_ATTACHMENT_BYTES}"
        return None
    limit = ATTACHMENT_TEXT.get(key)
    if limit is None:
        return f"is not an attachment member (known: {', '.join([*ATTACHMENT_TEXT, 'size'])})"
    if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value):
        return f"must be text of at most {limit} characters without control characters"
    return _scalar_problem(value)


def attachments_problems(value: Any, where: str = "attachments") -> dict[str, str]:
    """What is wrong with a list of attachments, field by field (empty when nothing is)."""
    if not isinstance(value, (list, tuple)):
        return {where: "must be a list of attachment objects"}
    if len(value) > MAX_ATTACHMENTS:
        return {where: f"has more than {MAX_ATTACHMENTS} attachments"}
    problems: dict[str, str] = {}
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            problems[at] = "must be an object with name, url, content_type, size"
            continue
        if entry.get("name") is None:
            problems[f"{at}.name"] = "is required"
        for key, member in entry.items():
            if member is None and key in _OPTIONAL_MEMBERS or key == "name" and member is None:
                continue
            problem = _attachment_member_problem(str(key), member)
            if problem:
                problems[f"{at}.{key}"] = problem
    return problems


def clean_attachments(value: Any, where: str = "attachments") -> list[dict[str, Any]]:
    """Attachments as metadata only (None members dropped), or PayloadInvalid naming each bad member."""
    problems = attachments_problems(value, where)
    if problems:
        summary = "; ".join(f"{k} {v}" for k, v in problems.items())
        raise PayloadInvalid(f"attachments are refused: {summary}", fields=problems)
    return [{k: v for k, v in entry.items() if v is not None} for entry in value]


def _text(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str) or not value.strip():
        return None, "must be non-empty text"
    limit = spec.max_length or (200 if spec.type != "text" else _MAX_TEXT)
    if len(value) > limit:
        return None, f"is longer than {limit} characters"
    return value.strip(), None


def _integer(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None, "must be a whole number"
    if abs(value) > MAX_INTEGER:
        return None, f"must be between -{MAX_INTEGER} and {MAX_INTEGER}"
    return value, None


def _number(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, "must be a number"
    if isinstance(value, int) and abs(value) > MAX_INTEGER or not math.isfinite(value):
        return None, "must be a finite number of sensible size"
    return float(value), None


def _boolean(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, bool):
        return None, "must be true or false"
    return value, None


def _choice(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    if value not in spec.choices:
        return None, f"must be one of {', '.join(spec.choices)}"
    return value, None


def _duration(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    try:
        return str(Duration.parse(value)), None
    except DurationError as exc:
        return None, str(exc)


def _datetime(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None, "must be an ISO 8601 date-time"
    if parsed.tzinfo is None:
        return None, "must carry a time zone offset"
    return parsed.isoformat(), None


MAX_UNITS = 20


def _units(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    """A list of unit codes (co-handlers, participants): each non-empty, duplicates dropped, order kept."""
    if not isinstance(value, (list, tuple)):
        return None, "must be a list of unit codes"
    if len(value) > MAX_UNITS:
        return None, f"names more than {MAX_UNITS} units"
    out: list[str] = []
    for v in value:
        if not isinstance(v, str) or not v.strip() or len(v) > 200:
            return None, "must be a list of unit codes (non-empty text of at most 200 characters each)"
        if v.strip() not in out:
            out.append(v.strip())
    return out, None


#: field type -> its check: the clean value, or None and what is wrong.
_CHECKS: dict[str, Callable[[FieldSpec, Any], tuple[Any, str | None]]] = {
    "string": _text, "text": _text, "unit": _text, "case": _text, "integer": _integer, "number": _number,
    "boolean": _boolean, "choice": _choice, "duration": _duration, "datetime": _datetime, "units": _units,
}


def _check(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    check = _CHECKS.get(spec.type)
    return check(spec, value) if check is not None else (value, None)


def _common_field(name: str, value: Any) -> tuple[Any, dict[str, str]]:
    """An undeclared field every action accepts (comment, attachments): its clean value, or what is
    wrong with it, member by member."""
    if name == "comment":
        if not isinstance(value, str) or len(value) > _MAX_TEXT:
            return None, {name: f"must be text of at most {_MAX_TEXT} characters"}
        return value, {}
    if name == "attachments":
        problems = attachments_problems(value, name)
        return (None, problems) if problems else (clean_attachments(value, name), {})
    return None, {name: "is not a field of this action"}


def validate_payload(action: ActionDef, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The clean payload (declared fields checked and normalised, common fields kept), or PayloadInvalid."""
    fields = action.fields
    if not payload:
        for f in fields:
            if f.required:
                break
        else:
            return {}
        payload = {}
    elif not isinstance(payload, dict) and not isinstance(payload, Mapping):
        raise PayloadInvalid(f"payload for {action.name!r} must be a mapping of field names to values, "
                             f"got {type(payload).__name__}", action=action.name, fields={})
    else:  # measured before any check reads a value: a hostile nesting must not reach str() or repr()
        problem = json_problem(payload, PAYLOAD_BOUNDS)
        if problem is not None:
            raise PayloadInvalid(f"payload for {action.name!r} is refused: {problem[0]} {problem[1]}",
                                 action=action.name, fields=dict([problem]))
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    given = 0  # declared fields present with a value
    for spec in fields:
        value = payload.get(spec.name)
        if value is None:
            if spec.required:
                errors[spec.name] = "is required"
            continue
        given += 1
        value, err = _check(spec, value)
        if err:
            errors[spec.name] = err
        else:
            clean[spec.name] = value
    if given < len(payload):  # something besides the declared fields
        for name, value in payload.items():
            if any(f.name == name for f in fields):
                continue
            value, problems = _common_field(name, value)
            if problems:
                errors.update(problems)
            else:
                clean[name] = value
    if errors:
        summary = "; ".join(f"{k} {v}" for k, v in errors.items())
        raise PayloadInvalid(f"payload for {action.name!r} is invalid: {summary}", action=action.name,
                             fields=errors, expected=[{"name": f.name, "type": f.type, "required": f.required,
                                                       **({"choices": list(f.choices)} if f.choices else {})}
                                                      for f in action.fields])
    return clean
