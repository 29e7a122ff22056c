"""The owner gate stops cleanly on SIGTERM (a container's first process ignores a signal it
has no handler for: `docker stop` would wait 10 s and kill it). A real process of
``python -m authenticator.gate``; no Redis is needed until a request comes."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_gate_stops_at_once_on_a_signal(sig):
    port = free_port()
    gate = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "authenticator.gate",
            f"--GateApp.port={port}",
            "--GateApp.ip=127.0.0.1",
            "--GateApp.redis_url=redis://127.0.0.1:9/0",
            "--GateApp.log_level=INFO",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not listening(port):
            assert gate.poll() is None, gate.communicate()[0]
            assert time.monotonic() < deadline, "the gate did not listen"
            time.sleep(0.05)
        gate.send_signal(sig)
        out, _ = gate.communicate(timeout=5)
    finally:
        gate.kill()
    assert gate.returncode == 0, out  # handled: not killed by the signal's default action
    assert "classhub gate stopping" in out
