"""The few named errors of gridflow, each with a stable machine-readable code.

Every layer raises these; the API maps them to problem+json with the same code
and the CLI prints their message. ``details`` carries structured facts (the
allowed actions, the failing guard, the broken fields) for clients to act on.
"""

from __future__ import annotations

from typing import Any


class GridflowError(Exception):
    code = "gridflow_error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ActionNotAllowed(GridflowError):
    """The action exists but cannot be taken in the case's current state."""

    code = "action_not_allowed"
    status = 409


class UnknownAction(GridflowError):
    code = "unknown_action"
    status = 404


class RoleNotAllowed(GridflowError):
    code = "role_not_allowed"
    status = 403


class GuardFailed(GridflowError):
    code = "guard_failed"
    status = 409


class PayloadInvalid(GridflowError):
    code = "payload_invalid"
    status = 422


class VersionConflict(GridflowError):
    """The case changed since the caller read it (optimistic concurrency)."""

    code = "version_conflict"
    status = 409


class CaseNotFound(GridflowError):
    code = "case_not_found"
    status = 404


class NotFound(GridflowError):
    code = "not_found"
    status = 404


class Forbidden(GridflowError):
    code = "forbidden"
    status = 403


class DefinitionError(GridflowError):
    """A workflow definition is broken; ``problems`` lists every problem found."""

    code = "definition_invalid"
    status = 422

    def __init__(self, problems: list["Problem"], source: str = "") -> None:
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in workflow definition {source}".rstrip()
        super().__init__(
            head + ":\n" + "\n".join(f"  {p}" for p in self.problems),
            problems=[p.as_dict() for p in self.problems],
        )


class OrganisationInvalid(DefinitionError):
    """Organisation files (units, grid polygons, addresses) are broken; ``problems`` lists every problem,
    each with its file and line (YAML, CSV) or feature (GeoJSON). Nothing was loaded."""

    code = "organisation_invalid"
    status = 422

    def __init__(self, problems: list["Problem"], source: str = "") -> None:
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the organisation files {source}".rstrip()
        GridflowError.__init__(self, head + ":\n" + "\n".join(f"  {p}" for p in self.problems),
                               problems=[p.as_dict() for p in self.problems])


class UnitAmbiguous(PayloadInvalid):
    """A unit given by name matches more than one unit; ``candidates`` lists them (code and name)."""

    code = "unit_ambiguous"


class Problem:
    """One validation finding: where (file, line, element) and what."""

    __slots__ = ("file", "line", "element", "message")

    def __init__(self, message: str, element: str = "", file: str = "", line: int | None = None) -> None:
        self.message = message
        self.element = element
        self.file = file
        self.line = line

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "element": self.element, "message": self.message}

    def __str__(self) -> str:
        where = self.file or "<definition>"
        if self.line is not None:
            where += f":{self.line}"
        elem = f" [{self.element}]" if self.element else ""
        return f"{where}:{elem} {self.message}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


# --- the store's failures, as adapters report them (no database library's exceptions cross) ----

class StoreError(GridflowError):
    """The database failed or refused a write. ``cause`` is the driver's own words, for logs only."""

    def __init__(self, message: str, *, cause: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.cause = cause


class StoreUnavailable(StoreError):
    """The database could not be reached, or stayed locked: nothing was changed; try again shortly."""

    code = "database_unavailable"
    status = 503


class DataRefused(StoreError):
    """The database refused a value that got past validation (too long, out of range)."""

    code = "request_invalid"
    status = 422


class DuplicateKey(StoreError):
    """A row with the same unique key exists (or another integrity rule of the schema refused it)."""

    code = "duplicate_key"
    status = 409


class ConcurrentWrite(VersionConflict):
    """A concurrent transaction wrote first a key this change needed (an event number, a timer, an
    idempotency key): the case changed while this change was being decided."""

    def __init__(self, message: str, *, cause: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.cause = cause
