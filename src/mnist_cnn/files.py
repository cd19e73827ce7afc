"""Atomic writes: a temporary file in the same directory, fsync, then rename over the target.

A crash mid-save leaves the previous file (or none), never a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target` (same suffix); rename it over `target` on success."""
    target = Path(target)
    descriptor, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
    )
    os.close(descriptor)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, document: Any) -> None:
    write_text(target, json.dumps(document, indent=2, sort_keys=False) + "\n")


def save_with(target: str | Path, save: Callable[[Path], None]) -> None:
    """Let `save(path)` (e.g. `model.save`) write a temporary file, then move it into place."""
    with atomic_path(target) as temporary:
        save(temporary)
