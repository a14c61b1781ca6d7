"""Checks an action's payload against the fields its definition declares."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

from .definition import ActionDef, FieldSpec
from .durations import Duration, DurationError
from .errors import PayloadInvalid

_MAX_TEXT = 4000


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
    return value, None


def _number(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, "must be a number"
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


#: field type -> its check: the clean value, or None and what is wrong.
_CHECKS: dict[str, Callable[[FieldSpec, Any], tuple[Any, str | None]]] = {
    "string": _text, "text": _text, "unit": _text, "case": _text, "integer": _integer, "number": _number,
    "boolean": _boolean, "choice": _choice, "duration": _duration, "datetime": _datetime,
}


def _check(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    check = _CHECKS.get(spec.type)
    return check(spec, value) if check is not None else (value, None)


def _common_field(name: str, value: Any) -> str | None:
    """What is wrong with an undeclared field every action accepts (comment, attachments), if anything."""
    if name == "comment":
        if not isinstance(value, str) or len(value) > _MAX_TEXT:
            return f"must be text of at most {_MAX_TEXT} characters"
        return None
    if name == "attachments":
        if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
            return "must be a list of attachment objects"
        return None
    return "is not a field of this action"


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
            err = _common_field(name, value)
            if err:
                errors[name] = err
            else:
                clean[name] = value
    if errors:
        summary = "; ".join(f"{k} {v}" for k, v in errors.items())
        raise PayloadInvalid(f"payload for {action.name!r} is invalid: {summary}", action=action.name,
                             fields=errors, expected=[{"name": f.name, "type": f.type, "required": f.required,
                                                       **({"choices": list(f.choices)} if f.choices else {})}
                                                      for f in action.fields])
    return clean
