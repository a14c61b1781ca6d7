"""examples/dispatch_center.py drives the API as a dispatch center would; here against the app in-process."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi.testclient import TestClient

from gridflow.api.app import create_app

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "dispatch_center.py"


def _load():
    spec = importlib.util.spec_from_file_location("dispatch_center", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dispatch_center_script_takes_a_call_to_a_closed_case(app):
    lines: list[str] = []
    client = TestClient(create_app(app))
    outcome = _load().run(client, say=lines.append)
    assert outcome["final_state"] == "closed"
    assert any(line.startswith("hotline  dispatched") for line in lines)
    for number in outcome["reported"]:  # 12345 calls are hotline requests, not grid events
        case = client.get(f"/api/v1/cases/{number}", headers={"X-API-Key": "demo-admin"}).json()
        assert case["workflow"] == "hotline_request" and case["channel"] == "hotline"
    history = client.get(f"/api/v1/cases/{outcome['closed']}/history", headers={"X-API-Key": "demo-admin"})
    [rated] = [e for e in history.json()["data"]
               if e["type"] == "ActionTaken" and e["data"]["action"] == "rate"]
    assert (rated["actor"], rated["role"]) == (f"resident:{outcome['closed']}", "resident")
    assert any("138" in line and "13812345678" in line for line in lines)  # the department sees the caller
    total = outcome["stats"]["total"]
    # received counts per unit (the community and the department each received both calls)
    assert total["receipts"] == 2 and total["resolved"] == 1 and total["satisfaction_rate"] == 1.0
    assert "supervisor sees" in "\n".join(lines)
