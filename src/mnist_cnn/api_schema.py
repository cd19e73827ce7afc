"""The HTTP API's documented contract (OpenAPI): response models, the request body's two
JSON forms and multipart, and the error statuses. serve.py validates to the same rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mnist_cnn.data import IMAGE_SIZE


class Prediction(BaseModel):
    digit: int | None = Field(
        ge=0, le=9, description="the digit, or null when the model abstains (see `reason`)"
    )
    confidence: float = Field(description="calibrated probability of the likeliest digit")
    probabilities: list[float] = Field(description="calibrated, one per digit 0-9")
    reason: str | None = Field(
        None, description='only when `digit` is null: "not a digit: ..." or "not sure: ..."'
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
    return {"type": "object", "required": [name], "properties": {name: schema}}


BASE64 = {
    "type": "string",
    "minLength": 1,
    "description": "base64 image (PNG, JPEG, ...) or a data URL",
}
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [one_field("pixels", PIXELS_SCHEMA), one_field("image", BASE64)]}
        },
        "multipart/form-data": {
            "schema": one_field("image", {"type": "string", "format": "binary"})
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
        422: "wrong shape or range, or no digit found",
        503: "not ready, or too many requests in flight (see Retry-After)",
    }.items()
}

INCLUDE_PARAMETER = {
    "name": "include",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["preprocessed"]},
    "description": "`preprocessed`: add the 28x28 input the model saw to the answer",
}
