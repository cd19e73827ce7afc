"""A real uvicorn server on 127.0.0.1 for tests that need sockets, not the in-process
TestClient: `free_port()`, `serving(app)` (in a thread) and `serve_process(run_dir, log)`
(the `mnist-cnn serve` command as a child process)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from mnist_cnn.serve_workers import server_options

START_SECONDS = 60  # the app's lifespan loads and warms the model before `started`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app, log_level: str = "warning", http: type | None = None) -> Iterator[int]:
    """Run `app` in a thread on a free port until the block ends, with the options `mnist-cnn
    serve` gives uvicorn (`http`: another protocol class); yields the port."""
    port = free_port()
    options = server_options("127.0.0.1", port) | ({"http": http} if http else {})
    config = uvicorn.Config(app, log_level=log_level, **options)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "server did not start"
    try:
        yield port
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def serve_process(run_dir, log_path, *options: str) -> Iterator[tuple[subprocess.Popen, int]]:
    """`mnist-cnn serve --run run_dir` as a child process on a free port, stdout and stderr to
    `log_path`; yields (process, port) once /readyz says 200, and kills it at the end."""
    port = free_port()
    command = [sys.executable, "-m", "mnist_cnn.cli", "serve", "--run", str(run_dir)]
    with open(log_path, "wb") as log:
        server = subprocess.Popen([*command, "--port", str(port), *options], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + START_SECONDS * 2  # workers start one after another
            while True:
                assert server.poll() is None, Path(log_path).read_text()
                try:
                    url = f"http://127.0.0.1:{port}/readyz"
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    assert time.monotonic() < deadline, "server not ready"
                    time.sleep(0.2)
            yield server, port
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=30)
