"""`mnist-cnn serve` as a process: SIGTERM lets the request in flight finish, then it exits;
the access log has one line per request."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time

import pytest

from tests.live_server import serve_process


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_the_request_in_flight_then_exits(tiny_run, mnist, tmp_path, workers):
    log_path = tmp_path / "serve.log"
    with serve_process(tiny_run, log_path, "--workers", str(workers)) as (server, port):
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
    lines = log_path.read_text().splitlines()
    assert any(line.endswith(" ms") and "GET /readyz 200" in line for line in lines), lines
    assert sum("POST /predict 200" in line for line in lines) == 1, lines
    assert any("Finished server process" in line for line in lines), lines  # the graceful path
