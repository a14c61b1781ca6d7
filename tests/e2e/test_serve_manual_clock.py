"""One real ``gridflow serve --clock manual:…`` process (started and stopped by its PID): an admin moves
its clock over HTTP and the timers that fell due have fired when the answer comes; production refuses
the manual clock at start; the log warns about the estimated calendar year ahead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gridflow.engine.calendar import china_year_is_estimated

START = "2026-03-09T09:00:00+08:00"
EXE = Path(sys.executable).with_name("gridflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert EXE.exists(), "the package is not installed: run the README's first command"
    port = _free_port()
    cwd = tmp_path_factory.mktemp("serve-manual-clock")
    log = (cwd / "serve.log").open("w+")
    proc = subprocess.Popen([str(EXE), "serve", "--port", str(port), "--clock", f"manual:{START}",
                             "--log-level", "warning"], cwd=cwd, env=_env(GRIDFLOW_TIMER_POLL_INTERVAL="0.2"),
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"gridflow serve exited early:\n{log.read()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("gridflow serve did not become healthy")
        yield base, cwd / "serve.log"
    finally:
        proc.terminate()  # our own child, by its PID
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_an_admin_drives_the_served_clock_and_due_timers_fire_before_the_answer(server):
    base, _ = server
    admin = {"X-API-Key": "demo-admin"}
    shown = httpx.get(f"{base}/api/v1/admin/clock", headers=admin, timeout=10).json()
    assert shown["kind"] == "manual" and datetime.fromisoformat(shown["now"]) == datetime.fromisoformat(START)
    r = httpx.post(f"{base}/api/v1/cases", headers={"X-API-Key": "demo-grid-worker"}, timeout=10,
                   json={"category": "C0501", "title": "楼道漏水", "unit": "37060200100101"})
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    time.sleep(0.5)  # the poll thread runs meanwhile: on a clock that stands still it fires nothing
    r = httpx.post(f"{base}/api/v1/admin/clock", headers=admin, json={"advance": "P3D"}, timeout=60)
    assert r.status_code == 200, r.text
    moved = r.json()
    assert datetime.fromisoformat(moved["now"]) == datetime.fromisoformat(START) + timedelta(days=3)
    assert moved["fired"] >= 1  # the triage breach; its warning, past the breach too, is skipped (coalesce)
    history = httpx.get(f"{base}/api/v1/cases/{number}/history", headers=admin, timeout=10).json()
    types = [e["type"] for e in (history["data"] if isinstance(history, dict) else history)]
    assert "DeadlineBreached" in types
    r = httpx.post(f"{base}/api/v1/admin/clock", headers=admin, json={"advance": "-PT1H"}, timeout=10)
    assert r.status_code == 422 and r.json()["code"] == "clock_move_refused"


def test_the_start_log_warns_about_an_estimated_year_ahead(server):
    _, log = server
    text = log.read_text()
    estimated = [y for y in (2026, 2027) if china_year_is_estimated(y)]  # this year and the next
    for year in estimated:  # 2027 with holidays 0.109
        assert f"calendar year {year} is ESTIMATED" in text
    if not estimated:
        assert "ESTIMATED" not in text


def test_production_refuses_to_start_on_a_manual_clock(tmp_path):
    proc = subprocess.run(
        [str(EXE), "serve", "--port", str(_free_port()), "--clock", "manual"], cwd=tmp_path, timeout=60,
        env=_env(GRIDFLOW_ENVIRONMENT="production", GRIDFLOW_SEED_DEMO="false",
                 GRIDFLOW_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none"),
        capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "manual clock" in proc.stderr and "production" in proc.stderr
