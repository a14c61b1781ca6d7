"""Small facts a restart must not forget, in the ``runtime_state`` table: the scaled demo clock's epoch.

Every process of an installation (API workers, scheduler, Celery workers) reads the same epoch, so
they share one simulated timeline, and a restart continues it instead of starting over from real time.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import exc as sa_exc

from ..engine.clock import ClockEpoch
from ..engine.errors import DuplicateKey
from .db import Database
from .orm import RuntimeState

CLOCK_EPOCH = "scaled_clock_epoch"


def scaled_clock_epoch(db: Database, factor: float, real_now: datetime) -> ClockEpoch:
    """The stored epoch for ``factor`` (rebased and stored again when the factor changed), or a new one."""
    for _ in range(2):  # a second round when another process stored its epoch at the same moment
        with db.session() as session:
            row = session.get(RuntimeState, CLOCK_EPOCH)
            stored = ClockEpoch.from_json(json.loads(row.value)) if row is not None else None
            if stored is not None and stored.factor == factor:
                return stored
            epoch = stored.rebased(real_now, factor) if stored else ClockEpoch.starting(real_now, factor)
            row = row or RuntimeState(key=CLOCK_EPOCH, value="", updated_at=real_now)
            row.value, row.updated_at = json.dumps(epoch.to_json()), real_now
            session.add(row)
            try:
                session.commit()
            except (sa_exc.IntegrityError, DuplicateKey):
                session.rollback()
                continue
            return epoch
    raise RuntimeError("could not store the scaled clock's epoch")  # pragma: no cover
