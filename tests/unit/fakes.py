"""In-memory fakes of the storage port (``gridflow.adapters.ports``), for service tests without a database.

``FakeStore`` holds what is committed; each ``FakeUnitOfWork`` works on a copy and puts it back only
on ``commit()``, so a use case that fails leaves the store exactly as it was, as a transaction would.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Mapping

from gridflow.engine.case import Notification
from gridflow.engine.clock import Clock
from gridflow.engine.facts import Fact
from gridflow.engine.errors import CaseNotFound, ConcurrentWrite, VersionConflict
from gridflow.adapters.ports import (
    CaseRepository, CaseUpdate, ChainedEvent, NewCase, PriorResult, StoredCase, TakenTimer, UnitOfWork,
)
from gridflow.service.catalog import WorkflowCatalog
from gridflow.service.context import Services
from gridflow.demo.seed import demo_units
from gridflow.service.units import UnitDirectory, UnitInfo
from gridflow.settings import Settings
from tests.unit.helpers import CALENDARS


@dataclass(frozen=True)
class FakeTimer:
    case_id: int
    key: str
    deadline_id: str
    kind: str
    due_at: datetime


@dataclass
class _State:
    cases: dict[int, StoredCase] = field(default_factory=dict)
    events: dict[int, list[ChainedEvent]] = field(default_factory=dict)
    timers: dict[int, FakeTimer] = field(default_factory=dict)
    outbox: list[tuple[int, Notification]] = field(default_factory=list)
    prior: dict[str, PriorResult] = field(default_factory=dict)
    facts: dict[int, list[Fact]] = field(default_factory=dict)
    filed: dict[int, NewCase] = field(default_factory=dict)
    next_case_id: int = 1
    next_timer_id: int = 1

    def copy(self) -> "_State":
        return replace(self, cases=dict(self.cases), events={k: list(v) for k, v in self.events.items()},
                       timers=dict(self.timers), outbox=list(self.outbox), prior=dict(self.prior),
                       facts={k: list(v) for k, v in self.facts.items()}, filed=dict(self.filed))


class FakeStore:
    """The committed state, and the unit-of-work factory for ``Services(uow_factory=...)``."""

    def __init__(self) -> None:
        self.state = _State()
        self.commits = 0
        #: called once, after the next load and before its save: a concurrent writer's moment
        self.interleave: Callable[[], None] | None = None

    def uow(self, write: bool = True) -> "FakeUnitOfWork":
        return FakeUnitOfWork(self)

    # --- what tests look at -------------------------------------------------------------------

    def case(self, number: str) -> StoredCase:
        return next(c for c in self.state.cases.values() if c.number == number)

    def history(self, number: str) -> list[ChainedEvent]:
        return list(self.state.events.get(self.case(number).id, []))

    def facts(self, number: str) -> list[Fact]:
        return list(self.state.facts.get(self.case(number).id, []))

    def timers(self, number: str) -> dict[int, FakeTimer]:
        case_id = self.case(number).id
        return {i: t for i, t in self.state.timers.items() if t.case_id == case_id}


class FakeCaseRepository(CaseRepository):
    def __init__(self, store: FakeStore, state: _State) -> None:
        self.store = store
        self.state = state

    def load(self, number: str) -> StoredCase:
        for case in self.state.cases.values():
            if case.number == number:
                return self._loaded(case)
        raise CaseNotFound(f"no case {number!r}", number=number)

    def load_by_id(self, case_id: int) -> StoredCase:
        if case_id not in self.state.cases:
            raise CaseNotFound(f"no case with id {case_id}", id=case_id)
        return self._loaded(self.state.cases[case_id])

    def _loaded(self, case: StoredCase) -> StoredCase:
        hook, self.store.interleave = self.store.interleave, None
        if hook is not None:
            hook()
        return case

    def add(self, new: NewCase, number_for: Callable[[int], str]) -> StoredCase:
        from gridflow.engine.case import CaseSnapshot

        case_id = self.state.next_case_id
        self.state.next_case_id += 1
        snap = CaseSnapshot(number=number_for(case_id), workflow=new.workflow, version=new.version,
                            state=new.state, opened_at=new.opened_at, updated_at=new.opened_at,
                            origin_unit=new.origin_unit, reporter=new.reporter_id)
        case = StoredCase(case_id, snap, 0, community_code=new.community_code, street_code=new.street_code,
                          district_code=new.district_code)
        self.state.cases[case_id] = case
        self.state.filed[case_id] = new
        return case

    def open_cases_like(self, *, category, since, box, phone, phone_since, limit=200):
        from gridflow.engine.duplicates import OpenCase

        out = []
        for case_id, new in self.state.filed.items():
            case = self.state.cases[case_id]
            if case.snapshot.is_closed:
                continue
            near = (category and since is not None and box is not None and new.category == category
                    and new.opened_at >= since and new.lat is not None and new.lon is not None
                    and box[0] <= new.lat <= box[1] and box[2] <= new.lon <= box[3])
            same = phone and phone_since is not None and new.reporter_phone == phone \
                and new.opened_at >= phone_since
            if near or same:
                out.append(OpenCase(case.number, new.category, new.opened_at, new.lat, new.lon,
                                    new.reporter_phone))
        return out[:limit]

    def save(self, case: StoredCase, update: CaseUpdate) -> StoredCase:
        # The store's own copy decides: a concurrent writer may have committed since this one loaded.
        current = self.store.state.cases.get(case.id, self.state.cases[case.id])
        if current.version != case.version or self.state.cases[case.id].version != case.version:
            raise VersionConflict(
                f"case {case.number} changed while this action was being decided (expected version "
                f"{case.version}); reload it and try again", number=case.number, expected=case.version)
        last = update.events[-1] if update.events else None
        saved = replace(case, snapshot=update.case, version=case.version + 1,
                        event_seq=last.seq if last else case.event_seq,
                        last_hash=last.hash if last else case.last_hash,
                        escalation_unit=update.escalation_unit or case.escalation_unit,
                        first_response_at=update.first_response_at or case.first_response_at)
        self.state.cases[case.id] = saved
        self.state.events.setdefault(case.id, []).extend(update.events)
        self.state.timers = {i: t for i, t in self.state.timers.items()
                             if not (t.case_id == case.id and t.deadline_id in update.cancel)}
        for spec in update.schedule:
            self.state.timers[self.state.next_timer_id] = FakeTimer(case.id, spec.key, spec.deadline_id,
                                                                    spec.kind, spec.due_at)
            self.state.next_timer_id += 1
        self.state.outbox.extend((case.id, n) for n in update.notifications)
        self.state.facts.setdefault(case.id, []).extend(update.facts)
        return saved

    def facts(self, case_id: int) -> list[Fact]:
        return list(self.state.facts.get(case_id, []))

    def take_timer(self, timer_id: int) -> TakenTimer | None:
        timer = self.state.timers.pop(timer_id, None)
        if timer is None:
            return None
        return TakenTimer(timer.key, timer.due_at, self.load_by_id(timer.case_id))

    def open_case_ids(self, workflow: str, *, other_than_version: int) -> list[int]:
        return sorted(i for i, c in self.state.cases.items() if c.snapshot.workflow == workflow
                      and not c.snapshot.is_closed and c.snapshot.version != other_than_version)

    def prior_result(self, key: str) -> PriorResult | None:
        return self.state.prior.get(key)

    def remember(self, key: str, case: StoredCase, action: str, request_hash: str,
                 result: Mapping[str, Any], at: datetime) -> None:
        if key in self.state.prior or key in self.store.state.prior:
            raise ConcurrentWrite("a concurrent change wrote the same key first; reload and try again")
        self.state.prior[key] = PriorResult(request_hash, dict(result))


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.committed = False

    def __enter__(self) -> "FakeUnitOfWork":
        self._state = self.store.state.copy()
        self.cases = FakeCaseRepository(self.store, self._state)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._state = None

    def commit(self) -> None:
        self.store.state = self._state
        self.store.commits += 1
        self.committed = True

    def rollback(self) -> None:
        self._state = self.store.state.copy()
        self.cases = FakeCaseRepository(self.store, self._state)


def demo_directory() -> UnitDirectory:
    """The demo organisation, held in memory (never reloaded: there is no database to reload from)."""
    directory = UnitDirectory(ttl=float("inf"))
    directory._units = {code: UnitInfo(code, name, kind, parent, boundary)
                        for code, name, kind, parent, boundary in demo_units()}
    directory._loaded_at = time.monotonic()
    return directory


@functools.lru_cache(maxsize=1)
def shipped_catalog() -> WorkflowCatalog:
    """The shipped workflows, parsed once per test run."""
    catalog = WorkflowCatalog(CALENDARS)
    catalog.load_shipped()
    return catalog


def fake_services(store: FakeStore, clock: Clock) -> Services:
    """The use cases' context on the in-memory store: no database, no engine I/O."""
    return Services(db=None, catalog=shipped_catalog(), clock=clock, settings=Settings(environment="test"),
                    units=demo_directory(), uow_factory=store.uow)
