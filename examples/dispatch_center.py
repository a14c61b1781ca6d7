"""Drive gridflow's HTTP API the way a district dispatch center does in a morning.

1. The 12345 hotline logs two calls as ``hotline_request`` cases (one with the caller's phone, so the caller
   gets a case token and is recorded as the one it was logged for).
2. The hotline operator pulls its worklist (most urgent first), routes each new request to a unit by
   category with an urgency class, sending the version it read (If-Match) and an Idempotency-Key so a
   retried request never acts twice.
3. The housing department signs for it, calls the requester and replies; the urban-management
   department sits on its case.
4. The hotline centre calls the requester back; the caller rates with the case token (recorded as the
   resident of that case, never as the operator).
5. The supervisor reads the lights and the 三率 for the district.

Start a server first (``gridflow serve``), then::

    python examples/dispatch_center.py --url http://127.0.0.1:8000

The demo API keys (``demo-hotline``, ``demo-community``, …) are printed by ``gridflow serve``.
``tests/e2e/test_example_dispatch_center.py`` runs this script against the app in-process.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import httpx

#: Which department a category (a code of the event catalogue, GET /api/v1/catalog) goes to, and how urgent
#: it is (a city keeps this table in its dispatch rules).
ROUTING = {"C0501": ("dept-housing", "general"), "C0502": ("dept-housing", "utilities"),
           "C0101": ("dept-urban", "general"), "E0102": ("dept-urban", "complex")}
TOKENS = {"hotline": "demo-hotline", "housing": "demo-housing", "supervisor": "demo-supervisor"}


def call(client: httpx.Client, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    response = client.request(method, f"/api/v1{path}", headers=headers, **kwargs)
    if response.status_code >= 400:
        problem = response.json()
        raise SystemExit(f"{method} {path}: {response.status_code} {problem['code']}: {problem['detail']}")
    return response


def act(client: httpx.Client, token: str, number: str, action: str, version: int,
        payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """One action, safe to retry: the version we read, and a fresh idempotency key."""
    headers = {"If-Match": f'"{version}"', "Idempotency-Key": uuid.uuid4().hex}
    return call(client, token, "POST", f"/cases/{number}/actions/{action}", json=payload or {},
                headers=headers).json()


def run(client: httpx.Client, say=print) -> dict[str, Any]:
    # 1. Intake: the hotline logs calls; a caller who leaves a phone number gets a token to follow the case.
    calls = [
        {"workflow": "hotline_request", "category": "C0501", "title": "楼道漏水",
         "description": "3单元楼道顶部漏水", "unit": "37060200100101",
         "location": {"address": "海港路12号3单元"}, "reporter": {"name": "李明", "phone": "13812345678"},
         "channel": "hotline"},
        {"workflow": "hotline_request", "category": "C0101", "title": "井盖破损",
         "description": "路口井盖破损", "unit": "37060200100102", "channel": "hotline"},
    ]
    reported = [call(client, TOKENS["hotline"], "POST", "/cases", json=c).json() for c in calls]
    for r in reported:
        say(f"hotline  reported {r['number']} ({r['state']})")

    # 2. Dispatch: the hotline operator works its worklist, most urgent first.
    worklist = call(client, TOKENS["hotline"], "GET", "/worklist").json()["data"]
    ours = {r["number"] for r in reported}
    for case in worklist:
        if case["number"] not in ours or case["state"] != "accepted":
            continue
        unit, urgency = ROUTING.get(case["category"], ("dept-urban", "general"))
        result = act(client, TOKENS["hotline"], case["number"], "dispatch", case["version"],
                     {"unit": unit, "urgency": urgency, "request_type": "help",
                      "instructions": "请于时限内签收处理"})
        say(f"hotline  dispatched {case['number']} to {unit} ({urgency}) [{case['sla']['light']}] -> "
            f"{result['state']} v{result['version']}")

    # 3. Response: the housing department signs for it, calls the requester and replies.
    leak = reported[0]["number"]
    case = call(client, TOKENS["housing"], "GET", f"/cases/{leak}").json()
    say(f"housing  sees {leak}: contact {case['reporter_name']} {case['reporter_phone']}, "
        f"may {', '.join(case['allowed_actions'])}")
    step = act(client, TOKENS["housing"], leak, "sign_for", case["version"])
    step = act(client, TOKENS["housing"], leak, "contact_requester", step["version"],
               {"reached": True, "notes": "已约定上门时间"})
    step = act(client, TOKENS["housing"], leak, "reply", step["version"], {"result": "已更换破损水管"})
    say(f"housing  replied on {leak} -> {step['state']}")

    # 4. Call-back and rating: the centre calls back; the caller rates with the case token.
    step = act(client, TOKENS["hotline"], leak, "call_back", step["version"], {"reached": True})
    resident_token = reported[0]["resident_token"]
    step = act(client, resident_token, leak, "rate", step["version"],
               {"rating": "satisfied", "resolved": True})
    say(f"hotline  called back, resident rated -> {step['state']}")

    # 5. Supervision: lights on the district's worklist, and the three rates.
    board = call(client, TOKENS["supervisor"], "GET", "/cases", params={"closed": "false"}).json()["data"]
    for c in board:
        say(f"supervisor sees {c['number']} {c['state_label']} [{c['sla']['light']}] "
            f"left {c['sla']['left_s']}s of working time")
    stats = call(client, TOKENS["supervisor"], "GET", "/stats/sla").json()
    total = stats["total"]
    say(f"supervisor 三率: response {total['response_rate']}, resolution {total['resolution_rate']}, "
        f"satisfaction {total['satisfaction_rate']} over {total['receipts']} dispatches received")
    return {"reported": [r["number"] for r in reported], "closed": leak, "final_state": step["state"],
            "stats": stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="gridflow server")
    args = parser.parse_args()
    with httpx.Client(base_url=args.url, timeout=10) as client:
        run(client)


if __name__ == "__main__":
    main()
