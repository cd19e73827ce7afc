"""The request-head deadline on a real server (127.0.0.1): silent and trickling connections are
closed, keep-alive clients and slow bodies are not."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from mnist_cnn.connection_deadline import (
    HEAD_TIMEOUT_SECONDS,
    MAX_HEAD_BYTES,
    HeadDeadlineProtocol,
)
from mnist_cnn.serve import create_app
from mnist_cnn.serve_workers import server_options
from tests.live_server import serving

DEADLINE = 0.6  # seconds: the test's own, so that it runs in seconds
PATIENCE = DEADLINE + 3  # a closed connection must be seen closed within this


class QuickDeadline(HeadDeadlineProtocol):
    head_timeout = DEADLINE


@pytest.fixture(scope="module")
def port(tiny_run) -> Iterator[int]:
    with serving(create_app(tiny_run, body_timeout=30), http=QuickDeadline) as port:
        yield port


def connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    return connection


def closed_within(connection: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection (EOF or reset), None if it did not."""
    start = time.monotonic()
    connection.settimeout(seconds)
    try:
        while connection.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def test_the_shipped_servers_use_the_deadline():
    assert server_options("127.0.0.1", 0)["http"] is HeadDeadlineProtocol
    assert 1 <= HEAD_TIMEOUT_SECONDS <= 60


def test_a_connection_that_sends_nothing_is_closed(port):
    with connect(port) as connection:
        elapsed = closed_within(connection, PATIENCE)
    assert elapsed is not None and elapsed >= DEADLINE * 0.8


def test_a_trickled_request_head_is_closed(port):
    with connect(port) as connection:
        start = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ":
            try:
                connection.sendall(bytes([byte]))
            except OSError:  # closed while trickling: what should happen
                break
            time.sleep(0.05)
            if time.monotonic() - start > PATIENCE:
                break
        assert closed_within(connection, PATIENCE) is not None
    assert time.monotonic() - start < 2 * PATIENCE


def test_keep_alive_requests_and_a_slow_body_are_answered(port):
    with connect(port) as connection:
        for _ in range(2):  # the second one after the deadline has passed once
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in connection.recv(4096)
            time.sleep(DEADLINE * 1.5)
        # A head at once and a body slower than the head deadline: the app's body timeout
        # (30 s here) governs it, not the head deadline.
        body = b'{"pixels": ' + str([[0.0] * 28] * 28).encode() + b"}"
        head = (
            "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        connection.sendall(head + body[:10])
        time.sleep(DEADLINE * 2)
        connection.sendall(body[10:])
        answer = connection.recv(65536)
        assert b"200 OK" in answer and b'"digit":null' in answer  # blank: no digit found


def test_a_request_head_over_the_bound_gets_431_and_is_closed(port):
    with connect(port) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        try:
            for _ in range(MAX_HEAD_BYTES // 1000 + 10):
                connection.sendall(b"X-Filler: " + b"a" * 990 + b"\r\n")
        except OSError:  # closed while sending: the 431 is already waiting to be read
            pass
        connection.settimeout(PATIENCE)
        try:
            while chunk := connection.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]


def test_headers_within_the_bound_are_answered_on_every_request(port):
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (index, b"a" * 900) for index in range(40))
    with connect(port) as connection:
        for _ in range(3):  # 36 KB heads, three on one connection: 108 KB in all
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            assert b"200 OK" in connection.recv(4096)
