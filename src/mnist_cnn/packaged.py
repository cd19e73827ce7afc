"""The model that ships inside the package: `packaged_run_dir()`, what predict and serve use
when no `--run DIR` is given.

`packaged_model/` is a run directory as `mnist-cnn train --recipe robust` wrote it, less its
`model.keras` (predict and serve never load Keras):
`model.onnx`, `config.json` (its settings and the model's SHA-256), `metrics.json` and
`REPRODUCE.md` (the command and commit that trained it). No TensorFlow import here.
"""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.run import CONFIG_FILE, ONNX_FILE, ModelLoadError

PACKAGED_RUN_DIR = Path(__file__).parent / "packaged_model"
REPRODUCE_FILE = "REPRODUCE.md"  # how the packaged model was trained; not a run file
# What a run needs to be loaded through ONNX Runtime, the only backend a packaged run has.
REQUIRED_FILES = (ONNX_FILE, CONFIG_FILE)


def packaged_run_dir() -> Path:
    """The packaged run directory; ModelLoadError if its model is not installed."""
    missing = [name for name in REQUIRED_FILES if not (PACKAGED_RUN_DIR / name).is_file()]
    if missing:
        raise ModelLoadError(
            f"the packaged model is missing from this installation ({PACKAGED_RUN_DIR}: "
            f"no {' or '.join(missing)}); pass --run DIR"
        )
    return PACKAGED_RUN_DIR


def packaged_model_present() -> bool:
    """True if `packaged_run_dir()` would return (for tests and tools that may skip)."""
    try:
        packaged_run_dir()
    except ModelLoadError:
        return False
    return True
