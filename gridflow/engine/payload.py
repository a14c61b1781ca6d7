"""Checks an action's payload against the fields its definition declares."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from .definition import ActionDef, FieldSpec
from .durations import Duration, DurationError
from .errors import PayloadInvalid

_MAX_TEXT = 4000


def _check(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    t = spec.type
    if t in ("string", "text", "unit", "case"):
        if not isinstance(value, str) or not value.strip():
            return None, "must be non-empty text"
        limit = spec.max_length or (200 if t != "text" else _MAX_TEXT)
        if len(value) > limit:
            return None, f"is longer than {limit} characters"
        return value.strip(), None
    if t == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "must be a whole number"
        return value, None
    if t == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, "must be a number"
        return float(value), None
    if t == "boolean":
        if not isinstance(value, bool):
            return None, "must be true or false"
        return value, None
    if t == "choice":
        if value not in spec.choices:
            return None, f"must be one of {', '.join(spec.choices)}"
        return value, None
    if t == "duration":
        try:
            return str(Duration.parse(value)), None
        except DurationError as exc:
            return None, str(exc)
    if t == "datetime":
        try:
            parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            return None, "must be an ISO 8601 date-time"
        if parsed.tzinfo is None:
            return None, "must carry a time zone offset"
        return parsed.isoformat(), None
    return value, None


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
            if name == "comment":
                if not isinstance(value, str) or len(value) > _MAX_TEXT:
                    errors[name] = f"must be text of at most {_MAX_TEXT} characters"
                else:
                    clean[name] = value
            elif name == "attachments":
                if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
                    errors[name] = "must be a list of attachment objects"
                else:
                    clean[name] = value
            else:
                errors[name] = "is not a field of this action"
    if errors:
        summary = "; ".join(f"{k} {v}" for k, v in errors.items())
        raise PayloadInvalid(f"payload for {action.name!r} is invalid: {summary}", action=action.name,
                             fields=errors, expected=[{"name": f.name, "type": f.type, "required": f.required,
                                                       **({"choices": list(f.choices)} if f.choices else {})}
                                                      for f in action.fields])
    return clean
