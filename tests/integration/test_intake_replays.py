"""The same delivery posted twice at once (a sender retrying before the first answer came) files one
case, on SQLite and PostgreSQL: the delivery id is remembered in the case's own transaction."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

import sqlalchemy as sa

from gridflow.engine.signing import signed_headers
from gridflow.service import channels
from tests.integration.helpers import GRID

BODY = json.dumps({"category": "C0101", "title": "井盖位移", "unit": GRID}, ensure_ascii=False).encode()


def test_two_concurrent_posts_of_one_delivery_file_one_case(app):
    svc = app.services
    made = channels.create_source(svc, "sensor", workflow="grid_event", reporter_id="sensor",
                                  role="grid_worker", unit=GRID)
    headers = signed_headers(made.secret, "evt-race", datetime.now(timezone.utc), BODY)
    results, errors = [], []
    start = threading.Barrier(2)

    def post() -> None:
        try:
            source, delivery = channels.verify_delivery(svc, "sensor", headers, BODY)
            start.wait()
            results.append(channels.file_delivery(svc, source, delivery, BODY, json.loads(BODY)))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len({r.number for r in results}) == 1 and sorted(r.replayed for r in results) == [False, True]
    with svc.db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one() == 1
