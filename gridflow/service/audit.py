"""Verify the hash chains of case histories (tamper evidence for supervisors)."""

from __future__ import annotations

from typing import Iterator

from sqlmodel import select

from ..adapters.orm import CaseRow, EventRow
from .auth import Caller
from .context import Services
from .history import ChainReport, verify
from .scopes import visible_row


def verify_case(svc: Services, number: str, caller: Caller | None = None) -> ChainReport:
    """One case's chain; with a ``caller``, only a case in its scope (404 otherwise), as over the API."""
    with svc.uow(write=False) as uow:
        row = uow.cases.get(number) if caller is None else visible_row(svc, uow, caller, number)
        return verify(row.number or "", uow.cases.events(row.id), row.last_hash)


def verify_all(svc: Services, batch: int = 500) -> Iterator[ChainReport]:
    """Every case's chain, in case order, reading events in batches of cases."""
    last_id = 0
    while True:
        with svc.uow(write=False) as uow:
            cases = list(uow.session.exec(select(CaseRow.id, CaseRow.number, CaseRow.last_hash)
                                          .where(CaseRow.id > last_id).order_by(CaseRow.id).limit(batch)))
            if not cases:
                return
            ids = [c[0] for c in cases]
            by_case: dict[int, list[EventRow]] = {i: [] for i in ids}
            for ev in uow.session.exec(select(EventRow).where(EventRow.case_id.in_(ids))
                                       .order_by(EventRow.case_id, EventRow.seq)):
                by_case[ev.case_id].append(ev)
        for case_id, number, last_hash in cases:
            yield verify(number or str(case_id), by_case[case_id], last_hash)
        last_id = ids[-1]
