"""`mnist-cnn serve`: one server process, or N worker processes sharing one socket.

With `workers > 1`, uvicorn's supervisor starts the workers (fresh interpreters), restarts
any that dies, and on SIGTERM lets each finish its requests in flight. Each worker loads its
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
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def serve(settings: ServeSettings, host: str, port: int) -> bool:
    """Serve until SIGTERM or SIGINT; False if the server never started (e.g. port taken).

    The model is loaded here first in either case, so that a broken run directory is one
    error (ModelLoadError) before any worker starts."""
    import uvicorn

    from mnist_cnn.inference import Predictor
    from mnist_cnn.serve import create_app

    if settings.workers < 1:
        raise ValueError(f"workers must be >= 1, got {settings.workers}")
    if settings.access_log:
        configure_access_log()
    # uvicorn's own access log is off: ours has the time each request took.
    options = {"host": host, "port": port, "access_log": False, "server_header": False}
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
    with tempfile.TemporaryDirectory(prefix="mnist-cnn-metrics-") as metrics_dir:
        document = dataclasses.asdict(settings) | {"run_dir": str(Path(settings.run_dir))}
        os.environ[SETTINGS_VARIABLE] = json.dumps(document)
        os.environ[MULTIPROCESS_DIR_VARIABLE] = metrics_dir
        config = uvicorn.Config(APP_FACTORY, factory=True, workers=settings.workers, **options)
        socket = config.bind_socket()
        uvicorn.supervisors.Multiprocess(config, sockets=[socket]).run()
    return True
