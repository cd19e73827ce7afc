"""Text chosen by someone else (a file name, a request path) made fit for one output line."""

from __future__ import annotations


def one_line(text: str, max_characters: int | None = None) -> str:
    """`text` with control characters (a newline, a terminal escape) and undecodable bytes
    written as Python escapes, so it cannot forge lines of a log or of `predict`'s output;
    cut at `max_characters` (then ending "...") when given."""
    shown = text if max_characters is None else text[:max_characters]
    escaped = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in shown)
    return escaped + ("..." if len(shown) < len(text) else "")
