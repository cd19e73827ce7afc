"""Operations for `mnist-cnn serve`: Prometheus metrics (`/metrics`) and one access-log line
per request, from one pure ASGI middleware (`ObservedRequests`).

With several worker processes (serve_workers.py) each writes its values to files in the
directory named by PROMETHEUS_MULTIPROC_DIR, which prometheus-client reads when it is imported,
and `/metrics` sums them over all workers, whichever worker answers."""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist_cnn.text import one_line

ACCESS_LOGGER = "mnist_cnn.access"
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name
# Latency buckets (seconds): a pixels request takes ~1 ms alone, a photo 10-100 ms, a queue
# under load tens of ms; 2.5 s and up is a stuck request.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# Batch sizes, powers of two up to batching.MAX_BATCH (64).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# Paths counted by name; anything else counts as "other", so random URLs cannot grow the
# number of time series without bound.
KNOWN_PATHS = frozenset(
    {"/", "/predict", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}
)
# Label values are bounded (each new one is a new time series held for ever): other paths and
# methods count as "other". h11 passes any token as a method, so a client could mint millions.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Longest path or method written to the access log as it is; the rest is cut (a URL may be
# 100 KB long, and one log line per request should stay one readable line).
LOGGED_MAX_CHARACTERS = 200


class Metrics:
    """The server's metrics, in a registry of its own (one per app)."""

    def __init__(self, model: dict[str, str]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mnist_cnn_requests",
            "HTTP requests by method, path and status",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mnist_cnn_request_duration_seconds",
            "Time from request to the response's end",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "mnist_cnn_batch_size",
            "Images per model call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        # An info metric as a gauge of 1 (what prometheus-client's Info writes, which its
        # multiprocess mode cannot hold); "max" over workers, who all serve the same model.
        Gauge(
            "mnist_cnn_model_info",
            "The model served",
            list(model),
            multiprocess_mode="max",
            registry=self.registry,
        ).labels(**model).set(1)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format: this app's, or every worker's summed."""
        directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if not directory:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class ObservedRequests:
    """Pure ASGI middleware: counts and times every HTTP request and, when `access_log`, logs
    one line per request (method, path, status, milliseconds)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logging.getLogger(ACCESS_LOGGER) if access_log else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # no response sent (the client went away first)

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            status = status or 500
            raise
        finally:
            seconds = time.perf_counter() - started
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(path).observe(seconds)
            if self.logger is not None:
                self.logger.info(
                    "%s %s %d %.1f ms",
                    one_line(scope["method"], LOGGED_MAX_CHARACTERS),
                    one_line(scope["path"], LOGGED_MAX_CHARACTERS),
                    status,
                    1e3 * seconds,
                )
