"""`gridflow serve` for real, against clients that hold connections open: slowloris and idle sockets.

Everything is on loopback and bounded in time: the server is told to allow 1 second for headers and
1 second of keep-alive idleness, and every socket read has a timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HEADER_TIMEOUT = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    exe = Path(sys.executable).with_name("gridflow")
    assert exe.exists(), "the package is not installed: run the README's first command"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLOW_")}
    env.update(GRIDFLOW_HEADER_TIMEOUT=str(HEADER_TIMEOUT), GRIDFLOW_KEEP_ALIVE_TIMEOUT="1",
               GRIDFLOW_MAX_HEADER_BYTES="4096")
    cwd = tmp_path_factory.mktemp("serve-limits")
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--log-level", "warning"], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gridflow serve exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("gridflow serve did not become healthy")
    yield port
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes (True) or ``seconds`` pass (False); what it sent."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def test_headers_sent_byte_by_byte_are_cut_off_at_the_header_deadline(server):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.settimeout(0.2)
        start = time.monotonic()
        closed = False
        got = b""
        for byte in request:  # one byte every 50 ms: 250 bytes would take 12.5 s
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            more_closed, more = _closed_within(sock, 0.05)
            got += more
            if more_closed:
                closed = True
                break
            if time.monotonic() - start > HEADER_TIMEOUT + 4:
                break
        elapsed = time.monotonic() - start
    assert closed, "the server kept a trickling connection open"
    assert elapsed < HEADER_TIMEOUT + 3
    assert got.startswith(b"HTTP/1.1 408")


def test_a_connection_that_sends_nothing_is_closed(server):
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        closed, got = _closed_within(sock, HEADER_TIMEOUT + 3)
    assert closed and got.startswith(b"HTTP/1.1 408")


def test_an_idle_keep_alive_connection_is_closed_and_a_prompt_client_is_served(server):
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        closed, got = _closed_within(sock, 4)
    assert got.startswith(b"HTTP/1.1 200") and closed


def test_oversized_headers_are_refused(server):
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8192)
        closed, got = _closed_within(sock, 3)
    assert closed and got.startswith(b"HTTP/1.1 431")
    assert httpx.get(f"http://127.0.0.1:{server}/healthz", timeout=5).status_code == 200
