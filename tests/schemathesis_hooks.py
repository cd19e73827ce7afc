"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by tests/test_api_schema.py): real
image files for the schema's `format: byte` JSON field and its multipart image part.

Without them schemathesis sends random bytes as "images", which the server rightly refuses
with 400, and its positive-data check would report the schema as lying. The pictures are
noise at a random ink density (0 gives a blank picture, answered "no digit found"), in every
format the server accepts, at sizes from a thumbnail to a small photo.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # decode.ALLOWED_FORMATS
SMALLEST_SIDE, LARGEST_SIDE = 8, 300  # pixels; larger pictures only slow the run down


def _picture(seed: int, fmt: str, side: int, ink_fraction: float) -> bytes:
    generator = np.random.default_rng(seed)
    ink = generator.random((side, side)) < ink_fraction
    pixels = np.where(ink, 0, 255).astype(np.uint8)  # dark ink on white paper
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, fmt)
    return buffer.getvalue()


def pictures(formats: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    return st.builds(
        _picture,
        st.integers(0, 2**32 - 1),
        st.sampled_from(formats),
        st.integers(SMALLEST_SIDE, LARGEST_SIDE),
        st.floats(0, 0.5),
    )


schemathesis.openapi.format(
    "byte", pictures(FORMATS).map(lambda data: base64.b64encode(data).decode())
)
for name in FORMATS:
    schemathesis.openapi.media_type(f"image/{name.lower()}", pictures((name,)))
