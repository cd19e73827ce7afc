"""HTTP prediction API and the draw-a-digit page: `create_app(model_dir) -> FastAPI`."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool

from mnist_cnn.abstain import no_digit_answer
from mnist_cnn.api_schema import (
    ERRORS,
    INCLUDABLE,
    INCLUDE_PARAMETER,
    REQUEST_BODY,
    Prediction,
)
from mnist_cnn.batching import Batcher
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.head_requests import HeadAsGet
from mnist_cnn.inference import Predictor
from mnist_cnn.preprocess import preprocess
from mnist_cnn.request_body import read_image
from mnist_cnn.request_guard import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_IN_FLIGHT,
    RequestGuard,
    error_response,
)
from mnist_cnn.run import read_run
from mnist_cnn.runtime import cpu_count
from mnist_cnn.serve_metrics import Metrics, ObservedRequests

STATIC_DIR = Path(__file__).parent / "static"


def _warm_up(predictor: Predictor) -> None:
    """First calls trace the model and load Pillow's plugins; pay for them before 'ready'."""
    predictor.answers(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.float32))
    canvas = Image.new("L", (56, 56), 255)
    canvas.paste(0, (24, 8, 32, 48))  # a black bar: a "1"
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    preprocess(buffer.getvalue())


def create_app(
    model_dir: str | Path,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    access_log: bool = False,
    predictor: Predictor | None = None,
    threads: int | None = None,
) -> FastAPI:
    """The app; the model is loaded (unless `predictor` is given, already loaded from
    `model_dir`) and warmed up in the lifespan, then /readyz says 200. `access_log`: one line
    per request on the `mnist_cnn.access` logger. `threads`: ONNX Runtime's intra-op threads
    (default one per CPU)."""
    model_dir = Path(model_dir)
    if predictor is None:
        read_run(model_dir)  # a broken run fails now, not inside the server's startup
    if max_body_bytes < 1 or max_in_flight < 0 or body_timeout <= 0:
        raise ValueError("max_body_bytes must be >= 1, max_in_flight >= 0, body_timeout > 0")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = predictor or await run_in_threadpool(
            Predictor.from_dir, model_dir, threads=threads
        )
        await run_in_threadpool(_warm_up, loaded)
        app.state.preprocess_limiter = anyio.CapacityLimiter(threads or cpu_count())
        app.state.batcher = Batcher(loaded, on_batch=metrics.batch_size.observe)
        task = asyncio.create_task(app.state.batcher.run())
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="mnist-cnn",
        summary="Handwritten digit recognition with the Keras MNIST tutorial CNN.",
        lifespan=lifespan,
        docs_url=None,  # served below from the packaged Swagger UI, not a CDN
        redoc_url=None,  # ReDoc would load from a CDN: a blank page offline
    )
    app.state.ready = False
    app.add_middleware(HeadAsGet)  # innermost: the guard and the metrics see the HEAD
    app.add_middleware(
        RequestGuard,
        paths=frozenset({"/predict"}),
        max_body_bytes=max_body_bytes,
        max_in_flight=max_in_flight,
        body_timeout=body_timeout,
    )
    # Outermost: it sees every request, the guard's refusals included.
    metrics = Metrics({"run": str(model_dir), "name": model_dir.name})
    app.add_middleware(ObservedRequests, metrics=metrics, access_log=access_log)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get(
        "/metrics",
        summary="Prometheus metrics: requests, latency, batch sizes, model",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        content, media_type = metrics.exposition()
        return Response(content, media_type=media_type)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="mnist-cnn API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and warmed up", responses={503: ERRORS[503]})
    async def readyz(request: Request) -> Response:
        if not request.app.state.ready:
            return error_response(503, "loading the model", retry=True)
        return JSONResponse({"status": "ready"})

    @app.post(
        "/predict",
        summary="Predict the digit in an image",
        response_model=Prediction,
        responses=ERRORS,
        openapi_extra={"requestBody": REQUEST_BODY, "parameters": [INCLUDE_PARAMETER]},
    )
    async def predict(request: Request) -> Response:
        if not request.app.state.ready:
            return error_response(503, "loading the model", retry=True)
        include = request.query_params.getlist("include")
        if unknown := sorted(set(include) - INCLUDABLE):
            expected = ", ".join(sorted(INCLUDABLE))
            raise HTTPException(422, f"include: unknown value {unknown[0]!r} (expected {expected})")
        image = await read_image(request)
        if isinstance(image, str):  # nothing to classify: an answer, not an error
            return Response(orjson.dumps(no_digit_answer(image)), media_type="application/json")
        answer = await request.app.state.batcher.answer(image)
        content: dict[str, Any] = {
            "digit": answer.digit,
            "confidence": round(answer.confidence, 6),
            "probabilities": [round(value, 6) for value in answer.probabilities.tolist()],
        }
        if answer.reason is not None:
            content["reason"] = answer.reason
        if "preprocessed" in include:
            content["preprocessed"] = np.round(image.astype(float), 4).tolist()
        # Serialised here with orjson: FastAPI's generic encoder walks the values far slower.
        return Response(orjson.dumps(content), media_type="application/json")

    return app
