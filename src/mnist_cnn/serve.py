"""HTTP prediction API and the draw-a-digit page: `create_app(model_dir) -> FastAPI`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from mnist_cnn.api_schema import (
    ERRORS,
    INCLUDABLE,
    INCLUDE_PARAMETER,
    REQUEST_BODY,
    Prediction,
)
from mnist_cnn.batching import Batcher
from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.inference import Predictor
from mnist_cnn.preprocess import ALLOWED_FORMATS, NoDigitError, PreprocessError, preprocess
from mnist_cnn.request_guard import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_IN_FLIGHT,
    RequestGuard,
    error_response,
)
from mnist_cnn.run import read_run
from mnist_cnn.serve_metrics import Metrics, ObservedRequests

STATIC_DIR = Path(__file__).parent / "static"
_ALLOWED_MIMES = {f"image/{fmt.lower()}" for fmt in ALLOWED_FORMATS} | {"image/jpg"}
# A valid request nests 3 deep (an object holding 28 arrays of numbers); one nested deeper is
# malformed whatever it holds: 400, like any other undecodable body, and never walked further.
MAX_JSON_DEPTH = 3


def _too_deep(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests containers more than `limit` deep (iterative)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _refuse(value: Any, status: int, detail: str, *, level: int = 1) -> HTTPException:
    """The error for a JSON value (at `level` of the document: 1 is the document itself) that
    breaks the contract: 400 if the document nests deeper than any request. Checked only on
    this failure path, so valid requests pay nothing for it."""
    if _too_deep(value, MAX_JSON_DEPTH - level + 1):
        return HTTPException(400, f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return HTTPException(status, detail)


def _check_pixels(value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged rows
        array = None
    if array is None or array.dtype.kind not in "iuf":
        raise _refuse(value, 422, "pixels: expected 28 rows of 28 numbers", level=2)
    if array.shape != (IMAGE_SIZE, IMAGE_SIZE):
        shape = "x".join(map(str, array.shape)) or "a scalar"
        raise _refuse(value, 422, f"pixels: expected shape 28x28, found {shape}", level=2)
    if not np.isfinite(array).all():
        raise HTTPException(422, "pixels: NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise HTTPException(422, f"pixels: values must be in [0, 1], found {low:g} to {high:g}")
    return array.astype(np.float32)


def _preprocess(source: bytes | np.ndarray, name: str, mime: str | None = None) -> np.ndarray | str:
    """Same preprocessing as `mnist-cnn predict`: the 28x28 input, or why the picture holds no
    digit (a valid request with an answer: "no digit found: ..."); other errors -> 4xx."""
    try:
        return preprocess(source, name=name)
    except NoDigitError as error:
        return str(error).removeprefix(f"{name}: ")
    except PreprocessError as error:
        fmt = _identify(source) if isinstance(source, bytes) else None
        if fmt is not None and fmt not in ALLOWED_FORMATS:
            unsupported = f"format {fmt}"
        elif fmt is None and mime and mime.startswith("image/") and mime not in _ALLOWED_MIMES:
            unsupported = f"type {mime}"  # declared by the client, not recognised by Pillow
        else:
            raise HTTPException(400, str(error)) from None
        allowed = ", ".join(sorted(ALLOWED_FORMATS))
        detail = f"{name}: unsupported image {unsupported} (allowed formats: {allowed})"
        raise HTTPException(415, detail) from None


def _identify(data: bytes) -> str | None:
    """Format name from the header only (no pixels decoded); None if Pillow knows none."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except Exception:  # any failure means "not identified"
        return None


def _decode_base64(value: Any) -> tuple[bytes, str | None]:
    """`image` field (base64 or data URL) -> (bytes, declared MIME type or None)."""
    if not isinstance(value, str):
        raise _refuse(value, 422, "image: expected a base64 string or a data URL", level=2)
    mime = None
    if value.startswith("data:"):
        header, comma, value = value.partition(",")
        if not comma or not header.endswith(";base64"):
            raise HTTPException(400, "image: expected a base64 data URL (data:image/png;base64,…)")
        mime = header[len("data:") : -len(";base64")].lower()
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image: not valid base64") from None
    if not data:
        raise HTTPException(400, "image: empty")
    return data, mime


async def _read_image(request: Request) -> np.ndarray | str:
    """Request body -> preprocessed float32 (28, 28), or the reason no digit was found."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            # orjson refuses nesting past 1,024 levels itself (a JSONDecodeError, not a crash).
            document = orjson.loads(await request.body())
        except orjson.JSONDecodeError as error:
            raise HTTPException(400, f"body is not valid JSON ({error})") from None
        if not isinstance(document, dict) or document.keys() not in ({"pixels"}, {"image"}):
            expected = 'expected a JSON object with one field, "pixels" (28x28) or "image" (base64)'
            if isinstance(document, dict):
                found = ", ".join(sorted(map(repr, document))[:5]) or "none"
                expected += f", found fields {found}"
            raise _refuse(document, 422, expected)
        if "pixels" in document:  # MNIST-style input passes preprocess unchanged, in µs
            return _preprocess(_check_pixels(document["pixels"]), "pixels")
        data, mime = _decode_base64(document["image"])
        return await run_in_threadpool(_preprocess, data, "image", mime)
    if media == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise HTTPException(422, 'multipart field "image" (a file) is missing')
            data = await upload.read()
        if not data:
            raise HTTPException(400, "image: empty file")
        name = upload.filename or "image"
        return await run_in_threadpool(_preprocess, data, name, upload.content_type)
    raise HTTPException(
        415, f"unsupported Content-Type {media or '(none)'}: use application/json or multipart"
    )


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
) -> FastAPI:
    """The app; the model is loaded (unless `predictor` is given, already loaded from
    `model_dir`) and warmed up in the lifespan, then /readyz says 200. `access_log`: one line
    per request on the `mnist_cnn.access` logger."""
    model_dir = Path(model_dir)
    if predictor is None:
        read_run(model_dir)  # a broken run fails now, not inside the server's startup
    if max_body_bytes < 1 or max_in_flight < 0 or body_timeout <= 0:
        raise ValueError("max_body_bytes must be >= 1, max_in_flight >= 0, body_timeout > 0")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = predictor or await run_in_threadpool(Predictor.from_dir, model_dir)
        await run_in_threadpool(_warm_up, loaded)
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
        image = await _read_image(request)
        if isinstance(image, str):  # nothing to classify: an answer, not an error
            nothing = {"digit": None, "confidence": None, "probabilities": None, "reason": image}
            return Response(orjson.dumps(nothing), media_type="application/json")
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
