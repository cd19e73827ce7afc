"""`mnist-cnn serve`: one server process, or N worker processes on one port.

With `workers > 1`, uvicorn's supervisor starts the workers (fresh interpreters), restarts
any that dies, and on SIGTERM lets each finish its requests in flight. On Linux each worker
listens on a socket of its own, all bound to the port with SO_REUSEPORT, so that the kernel
spreads new connections over the workers (see `port_sockets`). Each worker loads its
own ONNX Runtime session with its share of the CPUs (threads = CPUs // workers), so the
workers do not fight over cores. The workers read their settings from one environment
variable, and their Prometheus metrics meet in one directory that /metrics, answered by any
worker, sums (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import uvicorn.supervisors.multiprocess

from mnist_cnn.connection_deadline import HeadDeadlineProtocol
from mnist_cnn.runtime import cpu_count
from mnist_cnn.serve_metrics import ACCESS_LOGGER, MULTIPROCESS_DIR_VARIABLE

SETTINGS_VARIABLE = "MNIST_CNN_SERVE_SETTINGS"  # the supervisor's ServeSettings, as JSON
APP_FACTORY = "mnist_cnn.serve_workers:app_from_environment"


@dataclass(frozen=True)
class ServeSettings:
    run_dir: str
    workers: int = 1
    access_log: bool = True
    limits: dict = dataclasses.field(default_factory=dict)  # create_app's byte/time limits

    @property
    def threads(self) -> int:
        """ONNX Runtime intra-op threads per worker: the CPUs shared out, at least one."""
        return max(1, cpu_count() // self.workers)


def default_workers() -> int:
    """One worker per CPU (measured against one worker with all threads: benchmarks/README)."""
    return cpu_count()


def configure_access_log() -> None:
    """One line per request on stderr, with the time of day."""
    access = logging.getLogger(ACCESS_LOGGER)
    if access.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def app_from_environment():
    """The app of one worker (uvicorn calls this in each worker process)."""
    from mnist_cnn.serve import create_app

    settings = ServeSettings(**json.loads(os.environ[SETTINGS_VARIABLE]))
    if settings.access_log:
        configure_access_log()
    return create_app(
        settings.run_dir,
        threads=settings.threads,
        access_log=settings.access_log,
        **settings.limits,
    )


LISTEN_BACKLOG = 2048  # uvicorn's own default: bursts of new connections wait, never refused


def port_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port, one per worker (SO_REUSEPORT, Linux).

    The kernel hands each new connection to one of them by a hash of the client's address, so
    keep-alive connections are shared out about evenly. On one shared socket, whichever worker
    wakes first accepts a whole burst: 16 wrk connections split 16/0, 14/2, 4/12 over two
    workers, and the loaded worker's clients wait (benchmarks/README, "HTTP serving"). The
    port is first bound without SO_REUSEPORT, so a port already in use (even by another
    `mnist-cnn serve`, which could otherwise share it) is an error here, as with one socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))  # OSError (address in use) if the port is taken
        port = probe.getsockname()[1]  # port 0: the one the system chose, for every socket
    sockets = []
    try:
        for _ in range(count):
            listening = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(listening)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listening.bind((host, port))
            listening.listen(LISTEN_BACKLOG)
            listening.set_inheritable(True)
    except OSError:
        for listening in sockets:
            listening.close()
        raise
    return sockets


class SpreadSupervisor(uvicorn.supervisors.Multiprocess):
    """uvicorn's supervisor, each first worker on a socket of its own (`port_sockets`).

    A worker started later (after a crash, or on SIGHUP) listens on all the sockets: no
    socket is ever left without a worker, at the cost of an even share after restarts."""

    def init_processes(self) -> None:
        for own in self.sockets:
            process = uvicorn.supervisors.multiprocess.Process(self.config, [own])
            process.start()
            self.processes.append(process)


def server_options(host: str, port: int) -> dict:
    """uvicorn.Config's options for every server process (tests/live_server.py uses them too)."""
    return {
        "host": host,
        "port": port,
        "access_log": False,  # uvicorn's own; ours has the time each request took
        "server_header": False,
        "http": HeadDeadlineProtocol,  # a deadline for request heads (slowloris)
    }


def serve(settings: ServeSettings, host: str, port: int) -> bool:
    """Serve until SIGTERM or SIGINT; False if the server never started (e.g. port taken).

    The model is loaded here first in either case, so that a broken run directory is one
    error (ModelLoadError) before any worker starts."""
    from mnist_cnn.inference import Predictor
    from mnist_cnn.serve import create_app

    if settings.workers < 1:
        raise ValueError(f"workers must be >= 1, got {settings.workers}")
    if settings.access_log:
        configure_access_log()
    options = server_options(host, port)
    if settings.workers == 1:
        predictor = Predictor.from_dir(settings.run_dir, threads=settings.threads)
        app = create_app(
            settings.run_dir,
            predictor=predictor,
            access_log=settings.access_log,
            **settings.limits,
        )
        server = uvicorn.Server(uvicorn.Config(app, **options))
        server.run()
        return server.started
    Predictor.from_dir(settings.run_dir, threads=1)
    config = uvicorn.Config(APP_FACTORY, factory=True, workers=settings.workers, **options)
    if sys.platform.startswith("linux"):
        try:
            sockets = port_sockets(host, port, settings.workers)
        except OSError as error:
            message = f"cannot listen on {host}:{port}: {error.strerror or error}"
            logging.getLogger("uvicorn.error").error(message)
            return False
        supervisor = SpreadSupervisor(config, sockets=sockets)
    else:  # one shared socket, as uvicorn does
        supervisor = uvicorn.supervisors.Multiprocess(config, sockets=[config.bind_socket()])
    document = dataclasses.asdict(settings) | {"run_dir": str(Path(settings.run_dir))}
    saved = {name: os.environ.get(name) for name in (SETTINGS_VARIABLE, MULTIPROCESS_DIR_VARIABLE)}
    try:
        with tempfile.TemporaryDirectory(prefix="mnist-cnn-metrics-") as metrics_dir:
            os.environ[SETTINGS_VARIABLE] = json.dumps(document)  # the workers inherit these
            os.environ[MULTIPROCESS_DIR_VARIABLE] = metrics_dir
            supervisor.run()
    finally:
        for listening in supervisor.sockets:
            listening.close()
        for name, value in saved.items():  # serve() called in-process leaves no trace
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return True
