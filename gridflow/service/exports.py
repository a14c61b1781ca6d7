"""Cases as flat records for spreadsheets: every case in the caller's scope, personal data always masked,
and no cell a spreadsheet would run as a formula.

An export is one query read through a server-side cursor (``stream_results``, ``yield_per``), so it
runs at the database's pace in constant memory: a street's month (42,000 cases) is one scan of its
``(street_code, opened_at)`` index, never re-queried page by page. Each row is a plain Core row with the
columns an export needs, and only what a line shows is computed: the masking of
:mod:`.masking` (as for any reader of an export) and the SLA light — decoded from the case's deadlines
only when one of them is running (a closed case shows none).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

import sqlalchemy as sa

from ..adapters.codec import has_running_deadline, snapshot_from
from ..adapters.orm import CaseRow
from .auth import Caller, require_staff
from .context import Services
from .lists import CaseFilter, filtered
from .masking import contact_for, exposure, text_for

#: The columns of an export, in order.
EXPORT_COLUMNS = ("number", "workflow", "state", "state_label", "stage", "category", "title", "description",
                  "address", "lat", "lon", "reporter_name", "reporter_phone", "holder_unit",
                  "escalation_level", "supervised", "opened_at", "closed_at", "outcome", "rating",
                  "breach_count", "light")
#: What an export reads of each case: its columns, what masking needs, and what the SLA light needs.
READ_COLUMNS = ("id", "number", "workflow", "workflow_version", "state", "stage", "category", "title",
                "description", "address", "lat", "lon", "reporter_id", "reporter_name", "reporter_phone",
                "holder_unit", "origin_unit", "escalation_level", "supervised", "opened_at", "updated_at",
                "closed_at", "outcome", "rating", "breach_count", "sla")
#: Rows fetched from the server-side cursor at a time.
BATCH = 1000

#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would evaluate (``=HYPERLINK(…)``, ``@SUM(…)``, ``-2+3``) gets a
    leading ``'``, so it is shown as the text it is; other values are left alone."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def export_rows(svc: Services, caller: Caller, f: CaseFilter = CaseFilter(), batch: int = BATCH
                ) -> Iterator[dict[str, Any]]:
    """Every case in scope as a flat record for a spreadsheet (:data:`EXPORT_COLUMNS`), oldest first;
    names, phones, ID numbers and addresses always masked, a confidential case's reporter left out,
    formulas defused. The read transaction stays open while the records are consumed."""
    require_staff(caller, "exporting cases")
    now = svc.clock.now()
    with svc.uow(write=False) as uow:
        svc.units.refresh(uow.session)
        query = (sa.select(*(getattr(CaseRow.__table__.c, c) for c in READ_COLUMNS))
                 .where(*filtered(svc, caller, f, now)).order_by(CaseRow.id))
        result = uow.connection.execution_options(stream_results=True, yield_per=batch).execute(query)
        lines = _Lines(svc, caller, now)
        for part in result.partitions():
            for row in part:
                yield lines.record(row)


class _Lines:
    """The export's per-row work, with what is the same for many rows looked up once."""

    def __init__(self, svc: Services, caller: Caller, now: datetime) -> None:
        self.svc, self.caller, self.now = svc, caller, now
        self._labels: dict[tuple[str, int, str], str] = {}

    def record(self, row: Any) -> dict[str, Any]:
        seen = exposure(self.caller, row, export=True)
        c = contact_for(self.caller, row, export=True, seen=seen)
        # Text cells defused (safe_cell); numbers, flags and timestamps cannot start a formula.
        return dict(zip(EXPORT_COLUMNS, (
            _safe(row.number or ""), _safe(row.workflow), _safe(row.state), _safe(self._label(row)),
            _safe(row.stage), _safe(row.category), _safe(text_for(seen, row.title) or ""),
            _safe(c.description), _safe(c.address or ""), c.lat, c.lon, _safe(c.name or ""),
            _safe(c.phone or ""), _safe(row.holder_unit or ""), row.escalation_level, row.supervised,
            row.opened_at.isoformat(), row.closed_at.isoformat() if row.closed_at else "",
            _safe(row.outcome or ""), _safe(row.rating or ""), row.breach_count, self._light(row))))

    def _label(self, row: Any) -> str:
        key = (row.workflow, row.workflow_version, row.state)
        label = self._labels.get(key)
        if label is None:
            st = self.svc.catalog.get(row.workflow, row.workflow_version).states.get(row.state)
            label = self._labels[key] = st.label.zh if st else row.state
        return label

    def _light(self, row: Any) -> str:
        """As :func:`.case_view.summarize` shows it (``Engine.sla_status``): a state pausing the SLA is
        suspended; without a running deadline there is no light, and the deadlines need no decoding."""
        engine = self.svc.catalog.engine(row.workflow, row.workflow_version)
        st = engine.definition.states.get(row.state)
        if not (st is not None and st.pauses_sla and not st.final) and not has_running_deadline(row.sla):
            return "none"
        snap = snapshot_from(row._mapping, engine.definition.escalation.top)
        return engine.sla_status(snap, self.now)["light"]
