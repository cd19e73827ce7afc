"""Tests for mnist_cnn.digit_components: which components of an ink mask are the digit."""

from __future__ import annotations

import numpy as np

from mnist_cnn.digit_components import keep_digit

RIM_DIVISOR = 6  # preprocess's background opening: a band of a sixth of the shorter side


def _page() -> tuple[np.ndarray, np.ndarray]:
    """A 120x120 mask with a digit-like bar in the middle; strength 1 on the mask."""
    mask = np.zeros((120, 120), bool)
    mask[30:90, 55:65] = True
    return mask, mask.astype(float)


def test_the_digit_alone_is_kept_unchanged() -> None:
    mask, strength = _page()
    np.testing.assert_array_equal(keep_digit(mask, strength, RIM_DIVISOR), mask)


def test_a_faint_speck_and_a_distant_mark_are_dropped() -> None:
    mask, strength = _page()
    digit = mask.copy()
    mask[40:42, 70:72] = True  # near, but a speck: 4 px against the bar's 600
    mask[5:15, 5:15] = True  # heavy enough, but far from the bar
    strength = mask.astype(float)
    np.testing.assert_array_equal(keep_digit(mask, strength, RIM_DIVISOR), digit)


def test_a_part_near_the_digit_is_kept() -> None:
    mask, _ = _page()
    mask[20:26, 50:70] = True  # a bar above, separate from the stem
    np.testing.assert_array_equal(keep_digit(mask, mask.astype(float), RIM_DIVISOR), mask)


def test_rims_along_the_edges_are_dropped_even_when_heavier() -> None:
    """A strip along one edge, and a ring around all four (light falling off towards every
    edge): each lies within the band of the edges and touches one, so neither is the digit."""
    for rim in ("strip", "ring"):
        mask, _ = _page()
        digit = mask.copy()
        if rim == "strip":
            mask[:, 112:] = True
        else:
            mask[:8], mask[-8:], mask[:, :8], mask[:, -8:] = True, True, True, True
        kept = keep_digit(mask, mask.astype(float), RIM_DIVISOR)
        np.testing.assert_array_equal(kept, digit, err_msg=rim)


def test_a_digit_crossing_the_band_is_no_rim() -> None:
    """A stem that touches the top edge but runs down past the band is the digit."""
    mask = np.zeros((120, 120), bool)
    mask[0:80, 55:65] = True
    np.testing.assert_array_equal(keep_digit(mask, mask.astype(float), RIM_DIVISOR), mask)


def test_when_everything_is_rim_the_heaviest_stands_for_the_digit() -> None:
    mask = np.zeros((120, 120), bool)
    mask[0:10, 30:90] = True  # heavier
    mask[115:, 50:60] = True
    kept = keep_digit(mask, mask.astype(float), RIM_DIVISOR)
    assert kept[0:10, 30:90].all() and not kept[115:].any()
