"""What the corpus draws from, per split: MNIST and Fashion-MNIST *test* images, typefaces.

The split rule lives here. `tune` takes test images with index below SPLIT_BOUNDARY and
typeface set A; `eval` takes index SPLIT_BOUNDARY and above and set B. MNIST's training images
are never read: the model learns from them. (MNIST's own notes: its first 5,000 test digits
come from NIST's cleaner SD-3 writers, the last 5,000 from SD-1's students, so `eval`'s
handwriting is the harder half.)
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
from benchmarks.corpus import typefaces

from mnist_cnn.data import IMAGES_MAGIC, LABELS_MAGIC, load_mnist, parse_idx

SPLITS = ("tune", "eval")
SPLIT_BOUNDARY = 5_000  # test-set index where `eval` starts (MNIST's SD-3 / SD-1 boundary)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_IMAGES = "t10k-images-idx3-ubyte.gz"  # the test split only
FASHION_LABELS = "t10k-labels-idx1-ubyte.gz"
# Fashion-MNIST's class names, in label order (its README).
FASHION_NAMES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
DIGITS = 10


def split_indices(split: str, total: int) -> np.ndarray:
    """Test-set indices a split may use."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
    return np.arange(0, SPLIT_BOUNDARY) if split == "tune" else np.arange(SPLIT_BOUNDARY, total)


class Sources:
    """Lazy access to one split's images and fonts (each loaded on first use)."""

    def __init__(self, split: str):
        split_indices(split, SPLIT_BOUNDARY)  # validates the name
        self.split = split

    @functools.cached_property
    def _mnist(self) -> tuple[np.ndarray, np.ndarray]:
        test = load_mnist(None).test  # the packaged, hash-checked copy
        return test.images, test.labels

    def mnist_image(self, index: int) -> np.ndarray:
        """MNIST test digit `index`: uint8 (28, 28), white ink (255) on black."""
        return self._mnist[0][index]

    def mnist_orders(self, rng: np.random.Generator) -> dict[int, np.ndarray]:
        """Label -> the split's test indices of that label, in a random order: a class takes
        them one after the other (no repeats until a label's indices run out)."""
        images, labels = self._mnist
        allowed = split_indices(self.split, len(images))
        return {
            label: rng.permutation(allowed[labels[allowed] == label]) for label in range(DIGITS)
        }

    @functools.cached_property
    def fashion(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indices, images, labels) of the split's Fashion-MNIST test images."""
        images = _read_idx(FASHION_DIR / FASHION_IMAGES, IMAGES_MAGIC, 3)
        labels = _read_idx(FASHION_DIR / FASHION_LABELS, LABELS_MAGIC, 1)
        allowed = split_indices(self.split, len(images))
        return allowed, images[allowed], labels[allowed]

    @property
    def fonts(self) -> dict[str, tuple[str, ...]]:
        """Style -> font paths of this split's typeface set."""
        return typefaces.fonts_for_split(self.split)

    @property
    def all_fonts(self) -> tuple[str, ...]:
        return tuple(path for paths in self.fonts.values() for path in paths)


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        data = gzip.decompress(path.read_bytes())
    except OSError as error:
        raise RuntimeError(f"{path}: cannot read Fashion-MNIST ({error})") from None
    return parse_idx(data, path, magic=magic, ndim=ndim)
