"""one_line: client-chosen text fit for one line of output."""

from __future__ import annotations

import os

from mnist_cnn.text import one_line


def test_control_characters_and_undecodable_bytes_are_escaped():
    name = os.fsdecode(b"fake.png: 7 (1.0000)\n\x1b[31mx\xff.png")
    shown = one_line(name)
    assert shown == "fake.png: 7 (1.0000)\\n\\x1b[31mx\\udcff.png"
    assert shown.isprintable()


def test_plain_text_is_kept_and_long_text_cut():
    assert one_line("photo é 7.png") == "photo é 7.png"
    assert one_line("a" * 10, max_characters=4) == "aaaa..."
    assert one_line("abcd", max_characters=4) == "abcd"
