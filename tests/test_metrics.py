"""Metrics: class decisions from logits, confusion matrix, per-class accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.metrics import (
    confusion_matrix,
    per_class_accuracy,
    predicted_classes,
    true_classes,
)


def test_single_output_is_decided_by_the_sign_of_the_logit() -> None:
    # logits, not probabilities: 0.3 > 0 means σ(0.3) > 0.5, class 1
    np.testing.assert_array_equal(
        predicted_classes(np.array([[0.3], [-0.2], [2.0]])), [1, 0, 1]
    )


def test_argmax_for_several_outputs() -> None:
    np.testing.assert_array_equal(
        predicted_classes(np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])), [1, 0]
    )


def test_true_classes_from_labels_one_hot_and_binary() -> None:
    np.testing.assert_array_equal(true_classes(np.array([2, 0])), [2, 0])
    np.testing.assert_array_equal(true_classes(np.eye(3)[[2, 1]]), [2, 1])
    np.testing.assert_array_equal(true_classes(np.array([[0.9], [0.1]])), [1, 0])


def test_confusion_matrix_and_per_class_accuracy() -> None:
    m = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 4)
    np.testing.assert_array_equal(
        m, [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    )
    acc = per_class_accuracy(m)
    np.testing.assert_allclose(acc[:3], [0.5, 1.0, 2 / 3])
    assert np.isnan(acc[3])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="shape"):
        predicted_classes(np.zeros(3))
    with pytest.raises(ValueError, match=r"true labels must lie in \[0, 1\]"):
        confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="equal length"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 2)
