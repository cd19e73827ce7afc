"""A real uvicorn server on 127.0.0.1 for tests that need sockets, not the in-process
TestClient: `free_port()` and `serving(app)`."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

START_SECONDS = 60  # the app's lifespan loads and warms the model before `started`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app, log_level: str = "warning") -> Iterator[int]:
    """Run `app` in a thread on a free port until the block ends; yields the port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level)
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
