"""The HTTP API's documented contract (OpenAPI): response models, the request body's two
JSON forms and multipart, and the error statuses. serve.py validates to the same rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.decode import ALLOWED_FORMATS


class Prediction(BaseModel):
    digit: int | None = Field(
        ge=0, le=9, description="the digit, or null when the model abstains (see `reason`)"
    )
    confidence: float | None = Field(
        description="calibrated probability of the likeliest digit; null if no digit was found"
    )
    probabilities: list[float] | None = Field(
        description="calibrated, one per digit 0-9; null if no digit was found"
    )
    reason: str | None = Field(
        None,
        description='only when `digit` is null: "not a digit: ...", "not sure: ..." or "no digit'
        ' found: ..." (a blank or ink-less picture: nothing was classified)',
    )
    preprocessed: list[list[float]] | None = Field(
        None, description="only with `?include=preprocessed`: the 28x28 input the model saw, 0-1"
    )


class ErrorDetail(BaseModel):
    detail: str


PIXELS_SCHEMA = {
    "type": "array",
    "minItems": IMAGE_SIZE,
    "maxItems": IMAGE_SIZE,
    "items": {
        "type": "array",
        "minItems": IMAGE_SIZE,
        "maxItems": IMAGE_SIZE,
        "items": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "description": "28 rows of 28 numbers, 0 = background, 1 = ink (MNIST style)",
}


def one_field(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly the field `name` (a request holds one form, nothing else)."""
    return {
        "type": "object",
        "required": [name],
        "properties": {name: schema},
        "additionalProperties": False,
    }


# The formats decode.py accepts, as a part's media types (OpenAPI's comma-separated list).
IMAGE_MEDIA_TYPES = ", ".join(f"image/{name.lower()}" for name in sorted(ALLOWED_FORMATS))
BASE64 = {
    "type": "string",
    "format": "byte",  # OpenAPI's name for base64-encoded bytes
    "minLength": 1,
    "description": "a base64-encoded image file (PNG, JPEG, ...); a data URL"
    " (data:image/png;base64,...) is accepted too",
}
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [one_field("pixels", PIXELS_SCHEMA), one_field("image", BASE64)]}
        },
        "multipart/form-data": {
            # Other form fields are ignored (an HTML form may send its submit button).
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "an image file"}
                },
            },
            "encoding": {"image": {"contentType": IMAGE_MEDIA_TYPES}},
        },
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorDetail, "description": text}
    for code, text in {
        400: "undecodable body or image, or JSON nested deeper than a request",
        408: "the body did not arrive within the server's body timeout",
        413: "body over the byte cap",
        415: "unsupported Content-Type or image format",
        422: "a well-formed body of the wrong shape, type or range, or an unknown `include`",
        503: "not ready, or too many requests in flight (see Retry-After)",
    }.items()
}

INCLUDABLE = frozenset({"preprocessed"})  # optional parts of an answer, `?include=...`
INCLUDE_PARAMETER = {
    "name": "include",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": sorted(INCLUDABLE)},
    "description": "`preprocessed`: add the 28x28 input the model saw to the answer",
}
