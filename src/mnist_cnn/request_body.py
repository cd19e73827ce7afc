"""The body of a `POST /predict`: JSON pixels, a base64 image or a multipart upload ->
the preprocessed 28x28 input, or the reason the picture holds no digit. Every malformed body
is an HTTPException with the status and message the API documents (api_schema.py)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import anyio
import numpy as np
import orjson
from fastapi import HTTPException, Request
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.decode import identify
from mnist_cnn.preprocess import ALLOWED_FORMATS, NoDigitError, PreprocessError, preprocess

_ALLOWED_MIMES = {f"image/{fmt.lower()}" for fmt in ALLOWED_FORMATS} | {"image/jpg"}
# A valid request nests 3 deep (an object holding 28 arrays of numbers); one nested deeper is
# malformed whatever it holds: 400, like any other undecodable body, and never walked further.
MAX_JSON_DEPTH = 3
# A valid JSON body holds at most 28x28 numbers (783 commas between them) or one base64
# string (a data URL has one comma): a body with more commas than this is refused before it
# is parsed. Parsing the 20 MB a body may hold into millions of numbers held the event loop,
# and so every other request, for seconds; counting commas takes milliseconds.
MAX_JSON_COMMAS = 2 * IMAGE_SIZE * IMAGE_SIZE


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
        fmt = identify(source) if isinstance(source, bytes) else None
        if fmt is not None and fmt not in ALLOWED_FORMATS:
            unsupported = f"format {fmt}"
        elif fmt is None and mime and mime.startswith("image/") and mime not in _ALLOWED_MIMES:
            unsupported = f"type {mime}"  # declared by the client, not recognised by Pillow
        else:
            raise HTTPException(400, str(error)) from None
        allowed = ", ".join(sorted(ALLOWED_FORMATS))
        detail = f"{name}: unsupported image {unsupported} (allowed formats: {allowed})"
        raise HTTPException(415, detail) from None


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


def _truncated(body: bytes, content_type: str) -> bool:
    """Whether a multipart body lacks its closing boundary (`--BOUNDARY--`)."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    return bool(boundary) and b"--" + boundary + b"--" not in body


async def _preprocess_in_thread(
    request: Request, data: bytes, name: str, mime: str | None
) -> np.ndarray | str:
    """_preprocess in a worker thread, at most the app's `preprocess_limiter` pictures at once
    (create_app sets it to the CPUs the model uses): more would not run faster, and each
    decoded picture holds up to a few hundred MB."""
    limiter = getattr(request.app.state, "preprocess_limiter", None)
    return await anyio.to_thread.run_sync(_preprocess, data, name, mime, limiter=limiter)


async def read_image(request: Request) -> np.ndarray | str:
    """Request body -> preprocessed float32 (28, 28), or the reason no digit was found."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":  # never decompressed here: no bomb, and no garbled 400
        raise HTTPException(415, f"unsupported Content-Encoding {encoding}: send it uncompressed")
    if media == "application/json":
        body = await request.body()
        if (commas := body.count(b",")) > MAX_JSON_COMMAS:
            raise HTTPException(
                422,
                f"body: {commas} commas, more than any request holds (at most {MAX_JSON_COMMAS}"
                ': "pixels" is 28x28 numbers, "image" one string)',
            )
        try:
            # orjson refuses nesting past 1,024 levels itself (a JSONDecodeError, not a crash).
            document = orjson.loads(body)
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
        return await _preprocess_in_thread(request, data, "image", mime)
    if media == "multipart/form-data":
        # Read first (the guard has bounded its size): the parser drops a part left open, so
        # a truncated upload would otherwise read as one with no "image" field.
        body = await request.body()
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                if _truncated(body, request.headers.get("content-type", "")):
                    raise HTTPException(400, "multipart body is truncated (no closing boundary)")
                raise HTTPException(422, 'multipart field "image" (a file) is missing')
            data = await upload.read()
        if not data:
            raise HTTPException(400, "image: empty file")
        name = upload.filename or "image"
        return await _preprocess_in_thread(request, data, name, upload.content_type)
    raise HTTPException(
        415, f"unsupported Content-Type {media or '(none)'}: use application/json or multipart"
    )
