"""The README's quick start, followed as a newcomer would: its commands, then `gridflow serve` for real."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gridflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL_AND_SERVE = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/gridflow serve"
TEST_COMMAND = ".venv/bin/python -m pytest -n 2"


def _commands(text: str) -> list[str]:
    return [line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
            for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_readme_gives_the_two_commands_and_ci_runs_the_same_test_command():
    commands = _commands(README)
    assert commands[:2] == [INSTALL_AND_SERVE, TEST_COMMAND]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.strip().splitlines()[-1].strip() == TEST_COMMAND


def test_the_readme_documents_every_setting():
    missing = [f"GRIDFLOW_{name.upper()}" for name in Settings.model_fields
               if f"GRIDFLOW_{name.upper()}" not in README]
    assert missing == []


def test_the_readme_links_exist():
    for target in re.findall(r"\]\(((?!https?:|#)[^)]+)\)", README):
        assert (ROOT / target).exists(), target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """`gridflow serve` in an empty directory, exactly as the README starts it (plus a free port)."""
    exe = Path(sys.executable).with_name("gridflow")
    assert exe.exists(), "the package is not installed: run the README's first command"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gridflow serve exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"gridflow serve did not become healthy:\n{proc.stdout.read()}")
    yield base, proc, tmp_path
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_gridflow_serve_starts_the_embedded_default_with_demo_tokens(served):
    base, proc, cwd = served
    health = httpx.get(f"{base}/healthz").json()
    assert health["database"] == "ok" and health["runner"]["kind"] == "thread" and health["runner"]["running"]
    key = {"X-API-Key": "demo-grid-worker"}
    created = httpx.post(f"{base}/api/v1/cases", headers=key,
                         json={"category": "C0501", "title": "楼道漏水", "unit": "37060200100101"}).json()
    worklist = httpx.get(f"{base}/api/v1/worklist", headers={"X-API-Key": "demo-community"}).json()["data"]
    assert created["number"] in [c["number"] for c in worklist]
    assert 'action="/signin"' in httpx.get(f"{base}/", follow_redirects=True).text  # the console
    assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "gridflow"
    assert (cwd / "gridflow.db").exists()
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert f"{base}/docs" in output and "demo-community" in output and "demo-housing" in output
    assert "gridflow-demo" in output  # the console's demo password
