"""Small builders the API and end-to-end tests share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

GRID = "37060200100101"  # 海港社区第1网格 (street 370602001, community 370602001001)
OTHER_STREET_GRID = "37060200200101"  # 东山社区第1网格 (street 370602002)


def auth(token: str) -> dict[str, str]:
    return {"X-API-Key": token}


class Api:
    """A TestClient with the small conveniences the API tests share."""

    def __init__(self, client: TestClient, app) -> None:
        self.client = client
        self.app = app

    def report(self, token: str | None = "demo-grid-worker", **body: Any) -> dict[str, Any]:
        body.setdefault("category", "C0501")
        body.setdefault("title", "楼道漏水")
        body.setdefault("unit", GRID)
        r = self.client.post("/api/v1/cases", json=body, headers=auth(token) if token else {})
        assert r.status_code == 201, r.text
        return r.json()

    def act(self, token: str, number: str, action: str, payload: dict | None = None, **headers: str):
        return self.client.post(f"/api/v1/cases/{number}/actions/{action}", json=payload,
                                headers={**auth(token), **headers})

    def ok(self, token: str, number: str, action: str, payload: dict | None = None) -> dict[str, Any]:
        r = self.act(token, number, action, payload)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, token: str | None, path: str, **params: Any):
        return self.client.get(f"/api/v1{path}", params=params, headers=auth(token) if token else {})


def tamper_event(db, number: str, seq: int, actor: str) -> None:
    """Rewrite one history event behind the service's back, as someone with database access could:
    the append-only trigger has to be lifted first."""
    sqlite = db.dialect == "sqlite"
    lift = ["DROP TRIGGER IF EXISTS case_events_no_update"] if sqlite else [
        "ALTER TABLE case_events DISABLE TRIGGER case_events_append_only"]
    restore = [] if sqlite else ["ALTER TABLE case_events ENABLE TRIGGER case_events_append_only"]
    with db.write_engine.begin() as conn:
        for stmt in lift:
            conn.exec_driver_sql(stmt)
        conn.execute(sa.text("UPDATE case_events SET actor = :actor WHERE seq = :seq AND case_id = "
                             "(SELECT id FROM cases WHERE number = :n)"),
                     {"actor": actor, "seq": seq, "n": number})
        for stmt in restore:
            conn.exec_driver_sql(stmt)
