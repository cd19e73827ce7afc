"""What a 12-megapixel phone JPEG costs to become a model input, by JPEG draft floor.

A synthetic photo (4032x3024, lit paper with a gradient and grain, one dark printed digit,
slightly out of focus, JPEG quality 92) goes through `preprocess` with each draft floor of
decode.py (the smallest side libjpeg may reduce to); median of several runs, and the answer of
the packaged model for each, so a floor that loses the digit shows.

    python benchmarks/phone_photo.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mnist_cnn import decode
from mnist_cnn.inference import Predictor
from mnist_cnn.packaged import packaged_run_dir
from mnist_cnn.preprocess import preprocess

WIDTH, HEIGHT = 4032, 3024  # a 12 MP phone camera's frame
DRAFT_FLOORS = (2048, 1024, 512)


def phone_photo(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH]
    paper = 200 + 30 * columns / WIDTH - 20 * rows / HEIGHT + rng.normal(0, 6, (HEIGHT, WIDTH))
    image = Image.fromarray(paper.clip(0, 255).astype(np.uint8)).convert("RGB")
    ImageDraw.Draw(image).text((1400, 600), "7", fill=(30, 30, 40), font_size=1800)
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(3)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    data = phone_photo()
    predictor = Predictor.from_dir(packaged_run_dir())
    print(f"photo: {WIDTH}x{HEIGHT} JPEG, {len(data)} bytes")
    original = decode._JPEG_DRAFT_SIDE
    try:
        for floor in DRAFT_FLOORS:
            decode._JPEG_DRAFT_SIDE = floor
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                image = preprocess(data)
                times.append(time.perf_counter() - start)
            answer = predictor.answers(image[None])[0]
            print(
                f"draft floor {floor:5d} px: {1e3 * float(np.median(times)):6.1f} ms  "
                f"answer {answer.digit} ({answer.confidence:.3f})"
            )
    finally:
        decode._JPEG_DRAFT_SIDE = original
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
