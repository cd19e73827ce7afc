"""A real-world evaluation corpus the project owns: seeded digit and non-digit pictures.

`python -m benchmarks.corpus.make --split eval --out corpus/eval` regenerates one split;
README.md in this folder lists the classes and the split rule.
"""


class Rejected(Exception):  # noqa: N818  (a verdict on one draw, not a fault)
    """A drawn picture breaks a corpus rule (cut off, too faint, loops filled): draw again."""


class Unusable(Rejected):  # noqa: N818
    """No draw from this source can pass (a digit whose loops any marker fills): take another
    source picture instead of drawing again."""


class NoAcceptablePicture(RuntimeError):
    """A source gave no acceptable picture (Unusable, or every draw of it was rejected)."""

    def __init__(self, message: str, draws: int = 0):
        super().__init__(message)
        self.draws = draws  # pictures drawn from the source before giving up
