"""Hostile input against a real server on 127.0.0.1: 2,000+ malformed requests (mutated
bodies, wrong types, bad headers, bombs); every answer must be 2xx or 4xx, never a 5xx or a
hang, and the server must still answer afterwards."""

from __future__ import annotations

import base64
import http.client
import io
import json
import random
import socket
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.serve import create_app
from tests.live_server import serving

REQUESTS = 2_100
BODY_TIMEOUT = 0.5  # seconds: short, so truncated bodies come back as 408 quickly
CAP = 200_000  # bytes


@pytest.fixture(scope="module")
def port(tiny_run) -> Iterator[int]:
    app = create_app(tiny_run, max_body_bytes=CAP, body_timeout=BODY_TIMEOUT)
    with serving(app, log_level="critical") as free:
        yield free


def png(rng: random.Random) -> bytes:
    pixels = np.uint8(np.array([[rng.randrange(256) for _ in range(20)] for _ in range(20)]))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, rng.choice(["PNG", "JPEG", "GIF", "BMP"]))
    return buffer.getvalue()


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randrange(1, 8)):
        choice = rng.randrange(4)
        position = rng.randrange(len(data) + 1)
        if choice == 0 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice == 1:
            del data[position : position + rng.randrange(1, 64)]
        elif choice == 2:
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        else:
            data = data[:position]
    return bytes(data)


def valid_pixels(rng: random.Random) -> dict:
    return {"pixels": [[rng.random() for _ in range(28)] for _ in range(28)]}


WRONG_VALUES = [
    None,
    True,
    0,
    -1,
    1e308,
    "x",
    "",
    [],
    {},
    [[]],
    [[None] * 28] * 28,
    [[2] * 28] * 28,
    [[0.5] * 27] * 28,
    [[0.5] * 28] * 27,
    [[[0.5]] * 28] * 28,
    "data:,",
    "data:image/png;base64,",
    "%%%",
    "=" * 10,
    "AAAA",
]


def hostile_request(rng: random.Random) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) of one malformed request."""
    kind = rng.randrange(9)
    json_type = {"Content-Type": "application/json"}
    path = rng.choice(
        ["/predict", "/predict", "/predict?include=preprocessed", "/predict?include=x"]
    )
    if kind == 0:  # mutated valid JSON
        return path, json_type, mutate(json.dumps(valid_pixels(rng)).encode(), rng)
    if kind == 1:  # wrong types and shapes in the right fields
        field = rng.choice(["pixels", "image"])
        return path, json_type, json.dumps({field: rng.choice(WRONG_VALUES)}).encode()
    if kind == 2:  # wrong documents
        document = rng.choice(
            [
                [],
                1,
                "s",
                None,
                {"pixels": 1, "image": "x"},
                {"other": 1},
                {"pixels": valid_pixels(rng)["pixels"], "extra": [1] * 1000},
            ]
        )
        return path, json_type, json.dumps(document).encode()
    if kind == 3:  # mutated images, base64 and multipart
        image = mutate(png(rng), rng) if rng.random() < 0.8 else png(rng)
        if rng.random() < 0.5:
            body = json.dumps({"image": base64.b64encode(image).decode()}).encode()
            return path, json_type, body
        boundary = "b" + str(rng.randrange(10**6))
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"'
                f"\r\nContent-Type: image/png\r\n\r\n"
            ).encode()
            + image
            + f"\r\n--{boundary}--\r\n".encode()
        )
        if rng.random() < 0.3:
            body = mutate(body, rng)
        return path, {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body
    if kind == 4:  # bombs: deep nesting, huge numbers, long strings, over the cap
        depth = rng.choice([10, 1_000, 5_000, 50_000])
        bomb = rng.choice(
            [
                "[" * depth + "]" * depth,
                '{"a":' * depth + "1" + "}" * depth,
                '{"pixels": [' + "9" * 5000 + "]}",
                '{"image": "' + "A" * (CAP + 10) + '"}',
            ]
        )
        return path, json_type, bomb.encode()
    if kind == 5:  # bad or missing Content-Type
        media = rng.choice(
            [
                "",
                "text/plain",
                "application/x-www-form-urlencoded",
                "image/png",
                "multipart/form-data",
                "multipart/form-data; boundary=",
                "application/json; charset=utf-7",
            ]
        )
        return (
            path,
            {"Content-Type": media} if media else {},
            json.dumps(valid_pixels(rng)).encode(),
        )
    if kind == 6:  # random bytes
        return path, json_type, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    if kind == 7:  # non-UTF-8 and odd encodings of a valid document
        text = json.dumps(valid_pixels(rng))
        return (
            path,
            json_type,
            rng.choice(
                [text.encode("utf-16"), text.encode("utf-32"), b"\xef\xbb\xbf" + text.encode()]
            ),
        )
    return rng.choice(["/predict/", "/predict%00", "/readyz", "/nope"]), json_type, b"{}"


def send(port: int, path: str, headers: dict[str, str], body: bytes, method: str = "POST") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def raw(port: int, request: bytes) -> bytes:
    """A hand-written request (bad framing or headers): the first bytes of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        try:
            return connection.recv(256)
        except ConnectionResetError:
            return b""  # the server refused the framing outright: no 5xx


JSON_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
BAD_FRAMING = [
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n12345",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    JSON_HEAD + b"Content-Length: 99\r\n\r\n{}",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    JSON_HEAD + b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
]


def test_malformed_requests_get_4xx_never_5xx(port, mnist):
    rng = random.Random(20261202)
    statuses: Counter[int] = Counter()
    for _ in range(REQUESTS):
        path, headers, body = hostile_request(rng)
        statuses[send(port, path, headers, body)] += 1
    for request in BAD_FRAMING:
        answer = raw(port, request)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
        assert status == 0 or 400 <= status < 500 or status == 100, answer[:80]
        statuses[status] += 1
    outside = {status: count for status, count in statuses.items() if not 200 <= status < 500}
    assert sum(statuses.values()) >= 2_000
    assert outside == {} or set(outside) <= {0, 100}, statuses
    assert statuses[200] > 0 and sum(c for s, c in statuses.items() if 400 <= s < 500) > 1_000, (
        statuses
    )
    pixels = json.dumps({"pixels": (mnist.test.images[0] / 255).tolist()}).encode()
    assert send(port, "/predict", {"Content-Type": "application/json"}, pixels) == 200  # alive
