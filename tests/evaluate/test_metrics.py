"""Metrics against worked examples; the bootstrap (weighted) metrics against scikit-learn."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fintrain.evaluate.metrics import (
    classification_metrics,
    improves,
    regression_metrics,
    roc_auc,
    selection_metric,
    task_metrics,
    weighted_auc,
    weighted_metrics,
)


def test_auc_worked_example():
    # The ROC example of scikit-learn's documentation: 3 of 4 positive/negative pairs ordered.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)


def test_auc_ties_count_half_and_one_class_is_nan():
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.2, 0.2, 0.1, 0.9])) == pytest.approx(0.875)
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_classification_worked_example():
    m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]))
    assert m["brier"] == pytest.approx(0.0375)  # (0.01 + 0.01 + 0.04 + 0.09) / 4
    expected_ll = -(math.log(0.9) + math.log(0.9) + math.log(0.8) + math.log(0.7)) / 4
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert m["accuracy"] == 1.0 and m["auc"] == 1.0 and m["pos_rate"] == 0.5


def test_regression_worked_example():
    m = regression_metrics(np.array([0.01, -0.02, 0.03]), np.array([0.02, 0.01, -0.01]))
    assert m["mse"] == pytest.approx((0.0001 + 0.0009 + 0.0016) / 3)
    assert m["mae"] == pytest.approx((0.01 + 0.03 + 0.04) / 3)
    assert m["dir_acc"] == pytest.approx(1 / 3)


def test_weighted_auc_matches_sklearn_with_sample_weights():
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.3).astype(float)
    p = np.round(rng.random(200) + 0.3 * y, 2)  # rounded: many ties
    weights = rng.integers(0, 4, size=(5, 200)).astype(float)
    got = weighted_auc(y, p, weights)
    for r in range(5):
        assert got[r] == pytest.approx(roc_auc_score(y, p, sample_weight=weights[r]), abs=1e-12)


def test_weighted_metrics_with_unit_weights_are_the_plain_metrics():
    rng = np.random.default_rng(4)
    y = (rng.random(50) < 0.4).astype(float)
    p = rng.random(50)
    ones = np.ones((1, 50))
    plain = task_metrics("threshold", y, p)
    for name, values in weighted_metrics("threshold", y, p, ones).items():
        assert values[0] == pytest.approx(plain[name])
    r = rng.normal(size=50)
    pred = rng.normal(size=50)
    plain = task_metrics("return", r, pred)
    for name, values in weighted_metrics("return", r, pred, ones).items():
        assert values[0] == pytest.approx(plain[name])
    # A window drawn twice counts twice: the same as repeating it.
    w = np.ones((1, 50))
    w[0, 0] = 2.0
    assert weighted_metrics("threshold", y, p, w)["brier"][0] == pytest.approx(
        task_metrics("threshold", np.r_[y, y[0]], np.r_[p, p[0]])["brier"])


def test_selection_metric_and_its_direction():
    assert selection_metric("threshold", "auto") == "auc"
    assert selection_metric("return", "auto") == "mse"
    assert selection_metric("direction", "loss") == "loss"
    with pytest.raises(ValueError):
        selection_metric("return", "auc")
    assert improves("auc", 0.6, 0.55) and not improves("auc", 0.5, 0.55)
    assert improves("loss", 0.3, 0.4) and not improves("mse", 0.5, 0.4)
    assert improves("auc", 0.5, None) and not improves("auc", math.nan, 0.4)
