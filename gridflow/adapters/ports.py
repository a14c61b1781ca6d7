"""The storage port the use cases are written against, and the records that cross it.

The service asks the repository for a case and gets a ``StoredCase``: the engine's snapshot plus
the stored facts a write must keep (the version it compares and sets, the head of the hash chain,
the units the case is filed under). It decides, then hands back a ``CaseUpdate`` to save. The SQL
implementation is ``adapters.repository``; ``tests/unit/fakes.py`` keeps the same port in memory.

Failures come back as gridflow's own errors (``engine.errors``): ``StoreUnavailable``,
``VersionConflict`` (and its ``ConcurrentWrite``), ``DataRefused``, ``DuplicateKey``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from ..engine.case import CaseSnapshot, Notification, TimerSpec
from ..engine.duplicates import OpenCase
from ..engine.facts import Fact

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case as stored: what the engine decides on, and what the next write must carry on."""

    id: int
    snapshot: CaseSnapshot
    version: int  # compare-and-set: a writer that read an older version saves nothing
    event_seq: int = 0  # number of the last history entry
    last_hash: str = GENESIS_HASH  # head of the history's hash chain
    escalation_unit: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    first_response_at: datetime | None = None

    @property
    def number(self) -> str:
        return self.snapshot.number


@dataclass(frozen=True, slots=True)
class NewCase:
    """A report as filed, before the engine opens it (the repository gives it an id and a number)."""

    workflow: str
    version: int
    state: str
    origin_unit: str
    community_code: str | None
    street_code: str | None
    district_code: str | None
    opened_at: datetime
    reporter_id: str | None = None
    category: str = ""
    title: str = ""
    description: str = ""
    channel: str = "api"
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    attachments: tuple[Mapping[str, Any], ...] = ()
    resident_token_hash: str | None = None


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """A history entry as written: numbered and hash-chained to the one before."""

    seq: int
    type: str
    actor: str
    role: str
    at: datetime
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class CaseUpdate:
    """One decision, ready to save whole: the new snapshot, its history entries, timers and outbox."""

    case: CaseSnapshot
    events: tuple[ChainedEvent, ...]
    schedule: tuple[TimerSpec, ...] = ()
    cancel: tuple[str, ...] = ()  # deadline ids whose pending timers are void
    notifications: tuple[Notification, ...] = ()
    queued_at: datetime | None = None  # when the notifications were queued
    escalation_unit: str | None = None  # set when the escalation was routed to a unit (else unchanged)
    first_response_at: datetime | None = None  # set on the first response (else unchanged)
    facts: tuple[Fact, ...] = ()  # per-unit statistical facts derived from ``events`` (engine.facts)


class TakenTimer(NamedTuple):
    """A timer removed from the store to be fired, and its case."""

    key: str
    due_at: datetime
    case: StoredCase


@dataclass(frozen=True, slots=True)
class PriorResult:
    """What an idempotent request answered the first time."""

    request_hash: str
    result: Mapping[str, Any] = field(default_factory=dict)


class CaseRepository(abc.ABC):
    """Cases and what hangs off them, inside the caller's unit of work; nothing here commits."""

    @abc.abstractmethod
    def load(self, number: str) -> StoredCase:
        """The case with this public number, or CaseNotFound."""

    @abc.abstractmethod
    def load_by_id(self, case_id: int) -> StoredCase:
        """The case with this id, or CaseNotFound."""

    @abc.abstractmethod
    def add(self, new: NewCase, number_for: Callable[[int], str]) -> StoredCase:
        """File a new case at version 0; its number is derived from the id it is given."""

    @abc.abstractmethod
    def save(self, case: StoredCase, update: CaseUpdate) -> StoredCase:
        """Write a decision on ``case`` as read; VersionConflict if it changed meanwhile."""

    @abc.abstractmethod
    def open_cases_like(self, *, category: str, since: datetime | None,
                        box: tuple[float, float, float, float] | None, phone: str | None,
                        phone_since: datetime | None, limit: int = 200) -> list[OpenCase]:
        """Open cases of ``category`` opened since ``since`` with their point in ``box`` (lat_min, lat_max,
        lon_min, lon_max), and open cases reported from ``phone`` since ``phone_since``: the cases a new
        report may duplicate (``engine.duplicates`` ranks them). A rule whose bounds are None is off."""

    @abc.abstractmethod
    def facts(self, case_id: int) -> list[Fact]:
        """The statistical facts recorded for a case so far, in the order they were written."""

    @abc.abstractmethod
    def take_timer(self, timer_id: int) -> TakenTimer | None:
        """Remove a due timer and load its case (None if another firer took it first)."""

    @abc.abstractmethod
    def open_case_ids(self, workflow: str, *, other_than_version: int) -> list[int]:
        """Open cases of a workflow on any version but one (the cases a migration moves)."""

    @abc.abstractmethod
    def prior_result(self, key: str) -> PriorResult | None:
        """The answer remembered for an idempotency key, if any."""

    @abc.abstractmethod
    def remember(self, key: str, case: StoredCase, action: str, request_hash: str,
                 result: Mapping[str, Any], at: datetime) -> None:
        """Keep the answer of an idempotent request; ConcurrentWrite if the key was just taken."""

    # --- what a change sends out (channels); a store without subscribers or contacts sends nothing ---

    def subscribers(self) -> Sequence[Any]:
        """The active webhook subscribers (``adapters.channels.Subscriber``: ``id``, ``wants(type)``)."""
        return ()

    def reporter_phone(self, case_id: int) -> str | None:
        """The phone the case was reported with, if any."""
        return None


class UnitOfWork(abc.ABC):
    """One transaction: ``with uow: ...; uow.commit()`` — rolled back unless committed."""

    cases: CaseRepository
    #: what the unit directory reads the organisation tree over (None where it is preloaded)
    connection: Any = None

    def __enter__(self) -> "UnitOfWork":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...


class Locator(abc.ABC):
    """Where a point lies in the organisation (``adapters.geo`` answers with an STRtree)."""

    @abc.abstractmethod
    def locate(self, lat: float, lon: float) -> tuple[str, str] | None:
        """(code, kind) of the grid containing the point — else of the street, else of the district with
        a boundary containing it — or None when it lies outside all of them."""
