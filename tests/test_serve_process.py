"""`mnist-cnn serve` as a process: SIGTERM lets the request in flight finish, then it exits;
the access log has one line per request."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.live_server import free_port


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_sigterm_finishes_the_request_in_flight_then_exits(tiny_run, mnist, tmp_path):
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    command = [sys.executable, "-m", "mnist_cnn.cli", "serve", "--run", str(tiny_run)]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "server not ready"
                time.sleep(0.2)
        body = json.dumps({"pixels": (mnist.test.images[0] / 255).tolist()}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            head = (
                "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            connection.sendall(head.encode() + body[:100])  # the request is now in flight
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert server.poll() is None  # still finishing the request
            connection.sendall(body[100:])
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += connection.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
        # uvicorn shuts down gracefully, then re-raises the signal it caught (since 0.29), so
        # a supervisor sees an exit by SIGTERM, as from any well-behaved server.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
        log.close()
    lines = (tmp_path / "serve.log").read_text().splitlines()
    assert any(line.endswith(" ms") and "GET /readyz 200" in line for line in lines), lines
    assert sum("POST /predict 200" in line for line in lines) == 1, lines
    assert any("Finished server process" in line for line in lines), lines  # the graceful path
