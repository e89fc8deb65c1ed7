"""Baselines on hand-made sets; gbdt learns from the training windows only."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from fintrain.evaluate.baselines import GBDT_ROUNDS, baseline_scores, fit_gbdt
from fintrain.evaluate.metrics import roc_auc, task_metrics


def test_baselines_on_hand_made_set():
    train_y = np.array([1.0, 0.0, 0.0, 0.0])  # base rate 0.25
    test_y = np.array([1.0, 0.0, 1.0, 0.0])
    x_train = np.array([[2.0], [-1.0], [-2.0], [-1.5]])
    x_test = np.array([[1.5], [-1.0], [2.5], [-2.0]])
    out = baseline_scores("threshold", x_train, train_y, x_test, test_y, x_test)
    assert set(out) == {"base_rate", "always_up", "logistic", "gbdt"}
    m = {name: task_metrics("threshold", test_y, s.test) for name, s in out.items()}
    assert m["base_rate"]["auc"] == 0.5
    assert m["base_rate"]["brier"] == pytest.approx((0.75**2 + 0.25**2 + 0.75**2 + 0.25**2) / 4)
    assert m["always_up"]["accuracy"] == 0.5 and m["always_up"]["pos_rate"] == 1.0
    # The feature separates the classes, so the learned baseline ranks them perfectly.
    assert m["logistic"]["auc"] == 1.0
    assert [name for name, s in out.items() if s.learned] == ["logistic", "gbdt"]

    ry_train = np.array([0.01, 0.03, 0.02, 0.02])
    ry_test = np.array([0.01, -0.01])
    reg = baseline_scores("return", x_train, ry_train, x_test[:2], ry_test, x_test[:2])
    r = {name: task_metrics("return", ry_test, s.test) for name, s in reg.items()}
    assert r["zero_return"]["mse"] == pytest.approx((0.0001 + 0.0001) / 2)
    assert r["train_mean"]["mae"] == pytest.approx((0.01 + 0.03) / 2)
    assert set(reg) == {"zero_return", "train_mean", "linear", "gbdt"}


def _nonlinear(rng: np.random.Generator, n: int, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A label a tree finds and a line cannot: positive when |x0| > 1."""
    x = rng.normal(size=(n, 3))
    y = (np.abs(x[:, 0]) > 1.0).astype(float)
    return x, (1.0 - y) if flip else y


def test_gbdt_beats_logistic_where_the_signal_is_not_linear():
    rng = np.random.default_rng(0)
    x_train, y_train = _nonlinear(rng, 1500)
    x_val, y_val = _nonlinear(rng, 400)
    x_test, y_test = _nonlinear(rng, 400)
    out = baseline_scores("threshold", x_train, y_train, x_val, y_val, x_test, select="auc")
    assert roc_auc(y_test, out["gbdt"].test) > 0.95
    assert roc_auc(y_test, out["logistic"].test) < 0.65


def test_gbdt_is_fitted_on_train_only_and_sized_on_validation():
    rng = np.random.default_rng(1)
    x_train, y_train = _nonlinear(rng, 1500)
    x_test, y_test = _nonlinear(rng, 400)
    x_val, _ = _nonlinear(rng, 400)
    # Validation labels that say the opposite of the training labels: a model that learned from
    # them would rank the test windows backwards. Validation only picks the number of trees, so
    # the test scores are those of a model fitted on the training windows with that many trees.
    y_val_flipped = (np.abs(x_val[:, 0]) <= 1.0).astype(float)
    model, trees = fit_gbdt("threshold", x_train, y_train, x_val, y_val_flipped, select="loss")
    assert trees == GBDT_ROUNDS[0]  # more trees only fit train better, hence validation worse
    reference = HistGradientBoostingClassifier(**{**model.get_params(), "warm_start": False, "max_iter": trees})
    reference.fit(x_train, y_train)
    np.testing.assert_allclose(model.predict_proba(x_test), reference.predict_proba(x_test))
    assert roc_auc(y_test, model.predict_proba(x_test)[:, 1]) > 0.95
