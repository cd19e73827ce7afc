"""The request guard against a real server on 127.0.0.1: refusals a client can read (413 for
an over-cap body whatever the client, 408 for a body that never arrives), and JSON nested
deeper than a request is a 400."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from mnist_cnn.serve import create_app
from tests.live_server import serving

CAP = 2_000_000  # bytes: small, so the over-cap bodies below stay quick to send
BODY_TIMEOUT = 1.0  # seconds


@pytest.fixture(scope="module")
def server(tiny_run) -> Iterator[str]:
    app = create_app(tiny_run, max_body_bytes=CAP, body_timeout=BODY_TIMEOUT)
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


def post(url: str, data, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{url}/predict", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("size", [8_000_000, 50_000_000])
def test_urllib_reads_its_413_with_content_length(server, size):
    status, body = post(server, b"x" * size, {"Content-Type": "application/json"})
    assert status == 413 and f"over {CAP} bytes".encode() in body


@pytest.mark.parametrize("size", [8_000_000, 50_000_000])
def test_urllib_reads_its_413_when_chunked(server, size):
    def chunks():
        for _ in range(size // 1_000_000):
            yield b"x" * 1_000_000

    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    status, body = post(server, chunks(), headers)
    assert status == 413 and b"over" in body


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize("expect", ["100-continue", ""])  # curl's default, and switched off
def test_curl_reads_its_413(server, tmp_path, expect):
    upload = tmp_path / "big.bin"
    upload.write_bytes(b"x" * 50_000_000)
    result = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", f"Expect: {expect}"]
        + ["-H", "Content-Type: application/json", "--data-binary", f"@{upload}"]
        + [f"{server}/predict"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rsplit("\n", 1)[1] == "413" and "over" in result.stdout


def test_a_body_that_never_arrives_gets_408(server):
    port = int(server.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"pixels": '  # 11 bytes of the 1,000 promised
        )
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 5


@pytest.mark.parametrize("depth", [10, 100_000])
def test_json_nested_deeper_than_a_request_is_400(server, depth):
    for document in ("[" * depth + "]" * depth, '{"pixels": ' + "[" * depth + "]" * depth + "}"):
        status, body = post(server, document.encode(), {"Content-Type": "application/json"})
        assert status == 400, (depth, body[:200])
        assert b"nested" in body or b"not valid JSON" in body


def test_the_server_is_still_alive(server):
    with urllib.request.urlopen(f"{server}/healthz", timeout=10) as response:  # noqa: S310
        assert response.status == 200


@pytest.mark.parametrize("size", [1_500_000, 5_000_000])  # under and over the cap
def test_urllib_reads_its_503_while_sending_a_large_body(tiny_run, size):
    """The busy answer comes after the body is read and dropped, as the 413 does: closing on
    a client still sending gave it a reset instead of the 503."""
    app = create_app(tiny_run, max_body_bytes=CAP, body_timeout=BODY_TIMEOUT, max_in_flight=0)
    with serving(app) as port:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=b"x" * size,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)  # noqa: S310 (loopback)
    assert refused.value.code == 503 and refused.value.headers["Retry-After"]
    assert b"server busy" in refused.value.read()
