"""Cases as flat records for spreadsheets: every case in the caller's scope, personal data always masked,
and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

from typing import Any, Iterator

from sqlmodel import select

from ..adapters.orm import CaseRow
from .auth import Caller, require_staff
from .case_view import summarize
from .context import Services
from .lists import CaseFilter, filtered
from .masking import contact_for

#: The columns of an export, in order.
EXPORT_COLUMNS = ("number", "workflow", "state", "state_label", "stage", "category", "title", "description",
                  "address", "lat", "lon", "reporter_name", "reporter_phone", "holder_unit",
                  "escalation_level", "supervised", "opened_at", "closed_at", "outcome", "rating",
                  "breach_count", "light")

#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would evaluate (``=HYPERLINK(…)``, ``@SUM(…)``, ``-2+3``) gets a
    leading ``'``, so it is shown as the text it is; other values are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def export_rows(svc: Services, caller: Caller, f: CaseFilter = CaseFilter(), batch: int = 500
                ) -> Iterator[dict[str, Any]]:
    """Every case in scope as a flat record for a spreadsheet (:data:`EXPORT_COLUMNS`); names, phones,
    ID numbers and addresses always masked, a confidential case's reporter left out, formulas defused."""
    require_staff(caller, "exporting cases")
    now = svc.clock.now()
    last = None
    while True:
        with svc.uow(write=False) as uow:
            svc.units.refresh(uow.session)
            conds = filtered(svc, caller, f, now)
            if last is not None:
                conds.append(CaseRow.id > last)
            rows = list(uow.session.exec(select(CaseRow).where(*conds).order_by(CaseRow.id).limit(batch)))
        for row in rows:
            c = contact_for(caller, row, export=True)
            s = summarize(svc, caller, row, now, export=True)
            record = {
                "number": s.number, "workflow": s.workflow, "state": s.state, "state_label": s.state_label,
                "stage": s.stage, "category": s.category, "title": s.title, "description": c.description,
                "address": c.address or "", "lat": c.lat, "lon": c.lon, "reporter_name": c.name or "",
                "reporter_phone": c.phone or "", "holder_unit": s.holder_unit or "",
                "escalation_level": s.escalation_level, "supervised": s.supervised,
                "opened_at": s.opened_at.isoformat(),
                "closed_at": s.closed_at.isoformat() if s.closed_at else "",
                "outcome": s.outcome or "", "rating": row.rating or "", "breach_count": s.breach_count,
                "light": s.sla.light}
            yield {k: safe_cell(record[k]) for k in EXPORT_COLUMNS}
        if len(rows) < batch:
            return
        last = rows[-1].id
