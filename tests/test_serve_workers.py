"""`mnist-cnn serve --workers N`: N processes on one port, each with its share of the CPUs;
/metrics sums them all; a worker that dies is replaced and its counts are kept."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mnist_cnn import serve_workers
from mnist_cnn.serve_workers import ServeSettings, port_sockets, serve
from tests.live_server import free_port, serve_process

REPLACE_SECONDS = 120  # a new worker loads and warms the model before it answers
# Keep-alive connections opened at once, and the fewest each of 2 workers must hold: with an
# even hash split, fewer than 4 of 32 happens once in ~400,000 runs. On one shared socket a
# burst can land on one worker whole (16/0 was measured under wrk).
OPEN_CONNECTIONS, FEWEST_PER_WORKER = 32, 4


@pytest.mark.parametrize(
    ("cpus", "workers", "threads"), [(2, 1, 2), (2, 2, 1), (16, 4, 4), (2, 3, 1)]
)
def test_each_worker_gets_its_share_of_the_cpus(monkeypatch, cpus, workers, threads):
    monkeypatch.setattr(serve_workers, "cpu_count", lambda: cpus)
    assert ServeSettings(run_dir="run", workers=workers).threads == threads


def test_default_is_one_worker_per_cpu(monkeypatch):
    monkeypatch.setattr(serve_workers, "cpu_count", lambda: 6)
    assert serve_workers.default_workers() == 6


def test_zero_workers_is_refused(tiny_run):
    with pytest.raises(ValueError, match="workers must be >= 1"):
        serve(ServeSettings(run_dir=str(tiny_run), workers=0), "127.0.0.1", 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT")
def test_port_sockets_share_one_port_that_nobody_else_can_take():
    port = free_port()
    sockets = port_sockets("127.0.0.1", port, 3)
    try:
        assert {listening.getsockname()[1] for listening in sockets} == {port}
        with pytest.raises(OSError), socket.socket() as other:
            other.bind(("127.0.0.1", port))
        with pytest.raises(OSError):  # a second server, even one of ours, is refused
            port_sockets("127.0.0.1", port, 2)
    finally:
        for listening in sockets:
            listening.close()


def test_a_second_server_on_a_taken_port_fails(tiny_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = ServeSettings(run_dir=str(tiny_run), workers=2)
        assert serve(settings, "127.0.0.1", taken.getsockname()[1]) is False


def _connections_held(pid: int, port: int) -> int:
    """Established connections to `port` whose socket process `pid` holds (Linux /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            inodes.add(fields[9])
    held = 0
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            held += os.readlink(descriptor).removeprefix("socket:[").removesuffix("]") in inodes
    return held


def _workers(parent: int) -> set[int]:
    """The worker processes of a serve process (Linux /proc): spawned children, not the
    multiprocessing resource tracker."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    found = set()
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:  # exited meanwhile
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            found.add(child)
    return found


def _predicted(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    name = 'mnist_cnn_requests_total{method="POST",path="/predict",status="200"} '
    lines = [line for line in text.splitlines() if line.startswith(name)]
    return float(lines[0].removeprefix(name)) if lines else 0.0


def _predict(port: int, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", body, {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # a new connection each
        return json.loads(response.read())["digit"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_two_workers_share_the_port_and_the_metrics(tiny_run, mnist, tmp_path):
    body = json.dumps({"pixels": (mnist.test.images[0] / 255).tolist()}).encode()
    log_path = tmp_path / "serve.log"
    with serve_process(tiny_run, log_path, "--workers", "2", "--no-access-log") as (server, port):
        workers = _workers(server.pid)
        assert len(workers) == 2, log_path.read_text()
        answers = {_predict(port, body) for _ in range(40)}
        assert len(answers) == 1  # the same model in both workers
        assert _predicted(port) == 40  # every worker's requests, whichever answers /metrics

        # New connections are shared out over the workers, not taken by whichever wakes first.
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(OPEN_CONNECTIONS)]
        try:
            deadline = time.monotonic() + 30
            while sum(held := [_connections_held(pid, port) for pid in workers]) < OPEN_CONNECTIONS:
                assert time.monotonic() < deadline, held  # accepted by nobody
                time.sleep(0.1)
            assert min(held) >= FEWEST_PER_WORKER, held
        finally:
            for client in clients:
                client.close()

        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + REPLACE_SECONDS
        while len(_workers(server.pid) - {killed}) < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        for _ in range(10):
            assert _predict(port, body) in answers
        # The dead worker's counts stay: its files remain in the metrics directory.
        assert _predicted(port) == 50
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
    assert f"Child process [{killed}] died" in log_path.read_text()
