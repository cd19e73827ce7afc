"""Distance to the digit classes in feature space (novelty.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_cnn import novelty


def clusters(seed: int = 0, per_class: int = 200, dimensions: int = 32):
    generator = np.random.default_rng(seed)
    centres = generator.normal(0, 10, size=(10, dimensions))
    labels = np.repeat(np.arange(10), per_class)
    features = centres[labels] + generator.normal(0, 1, size=(len(labels), dimensions))
    return features, labels, centres


def test_points_of_the_classes_are_near_and_points_between_them_far():
    features, labels, centres = clusters()
    model = novelty.fit(features, labels, components=16)
    new_points = centres[labels] + np.random.default_rng(1).normal(0, 1, size=features.shape)
    inside = model.scores(new_points)
    outside = model.scores(np.random.default_rng(2).normal(0, 10, size=(200, 32)))
    assert np.quantile(inside, 0.99) < np.quantile(outside, 0.01)


def test_statistics_survive_a_round_trip_through_bytes():
    features, labels, _ = clusters()
    model = novelty.fit(features, labels, components=8)
    again = novelty.FeatureModel.from_bytes(model.to_bytes())
    np.testing.assert_allclose(again.scores(features[:50]), model.scores(features[:50]), rtol=1e-4)


def test_bad_statistics_and_missing_classes_are_refused():
    with pytest.raises(ValueError, match="not a feature-statistics file"):
        novelty.FeatureModel.from_bytes(b"not an npz", "features.npz")
    features, labels, _ = clusters()
    with pytest.raises(ValueError, match=r"none for \[9\]"):
        novelty.fit(features[labels != 9], labels[labels != 9])
