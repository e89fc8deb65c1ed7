"""The baselines every run is compared with: their scores on the validation and test windows.

Classification (threshold, direction):

- ``base_rate``: the training positive rate for every window (AUC 0.5);
- ``always_up``: probability 1;
- ``logistic``: L2-regularised logistic regression on each window's last-row features;
- ``gbdt``: scikit-learn's ``HistGradientBoostingClassifier`` on the same features.

Return: ``zero_return``, ``train_mean``, ``linear`` (ridge regression) and ``gbdt``
(``HistGradientBoostingRegressor``).

Every learned baseline is fitted on the training windows only. ``gbdt`` is early-stopped on the
validation windows by the measure the model is selected on: it grows trees in rounds
(``warm_start``), scores each round on validation and keeps the best, so validation labels pick
the number of trees and nothing else. (Its own ``early_stopping=True`` would carve a random
``validation_fraction`` out of the training windows, whose neighbours overlap it.) Its wheels
carry their own OpenMP on every platform, unlike LightGBM and XGBoost on macOS. It is fitted on
one OpenMP thread: on a few thousand windows the threads' start-up and spinning cost more than
they save, and on a busy 2-core machine the default (all cores) took 9 s instead of 0.4 s for
the hand-made set of ``tests/evaluate/test_baselines.py``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits

from fintrain.evaluate.metrics import improves, is_classification, task_metrics

log = logging.getLogger(__name__)

L2 = 1e-3  # penalty per window on the mean loss, for logistic and ridge alike
GBDT_ROUNDS = (25, 50, 100, 200, 400)  # trees after each round of gbdt's early stopping
GBDT_PATIENCE = 2  # rounds without validation improvement before it stops growing
LEARNED = ("logistic", "linear", "gbdt")


@dataclass(frozen=True)
class BaselineScores:
    """A baseline's outputs (probabilities or values) on the validation and test windows."""

    val: np.ndarray
    test: np.ndarray
    learned: bool
    note: str = ""


def _as_2d(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def fit_gbdt(
    task: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    select: str,
    seed: int = 0,
) -> tuple[HistGradientBoostingClassifier | HistGradientBoostingRegressor, int]:
    """A gradient-boosted tree fitted on the training windows, sized on the validation windows.

    Trees are added in rounds (``GBDT_ROUNDS``); after each, the model is scored on validation by
    ``select`` (``loss``: log-loss or MSE, or a metric name), and the best round's model is kept.

    Returns:
        The fitted model and its number of trees.
    """
    classification = is_classification(task)
    cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    model = cls(max_iter=GBDT_ROUNDS[0], early_stopping=False, warm_start=True, random_state=seed,
                learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0)
    measure = ("log_loss" if classification else "mse") if select == "loss" else select
    best, best_value, bad = None, None, 0
    with threadpool_limits(limits=1, user_api="openmp"):
        for trees in GBDT_ROUNDS:
            model.set_params(max_iter=trees)
            model.fit(train_x, train_y)
            value = task_metrics(task, val_y, _gbdt_output(model, val_x))[measure]
            if improves(measure, value, best_value):
                best, best_value, bad = copy.deepcopy(model), value, 0
            else:
                bad += 1
                if bad >= GBDT_PATIENCE:
                    break
        if best is None:  # every round scored NaN (one class in validation): keep the smallest
            best = cls(**{**model.get_params(), "max_iter": GBDT_ROUNDS[0], "warm_start": False})
            best.fit(train_x, train_y)
    return best, int(best.n_iter_)


def _gbdt_output(model: HistGradientBoostingClassifier | HistGradientBoostingRegressor, x: np.ndarray) -> np.ndarray:
    if isinstance(model, HistGradientBoostingClassifier):
        return model.predict_proba(x)[:, 1]
    return model.predict(x)


def baseline_scores(
    task: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    select: str = "loss",
    seed: int = 0,
    notify: Callable[[str], None] | None = None,
) -> dict[str, BaselineScores]:
    """Every baseline's scores on the validation and test windows, fitted on the training windows.

    Args:
        task: threshold, direction or return.
        train_x, val_x, test_x: (N, C) features of each window's last row.
        train_y, val_y: labels; validation labels only size ``gbdt``.
        select: the validation measure that sizes ``gbdt`` (see ``selection_metric``).
        seed: gbdt's random state.
        notify: hears which learned baseline is being fitted (``fitting gbdt baseline``).
    """
    notify = notify or (lambda what: None)
    train_x, val_x, test_x = _as_2d(train_x), _as_2d(val_x), _as_2d(test_x)
    train_y = np.asarray(train_y, dtype=np.float64)
    val_y = np.asarray(val_y, dtype=np.float64)
    n_val, n_test, n_train = len(val_x), len(test_x), len(train_x)
    out: dict[str, BaselineScores] = {}
    if is_classification(task):
        rate = float(train_y.mean())
        out["base_rate"] = BaselineScores(np.full(n_val, rate), np.full(n_test, rate), learned=False)
        out["always_up"] = BaselineScores(np.ones(n_val), np.ones(n_test), learned=False)
        if train_y.min() == train_y.max():
            # One class in training: nothing to learn; both learned baselines predict the rate.
            for name in ("logistic", "gbdt"):
                out[name] = BaselineScores(np.full(n_val, rate), np.full(n_test, rate), learned=True,
                                           note="one class in training")
            return out
        # sklearn's objective is C * sum(loss) + w.w / 2; ours is mean(loss) + L2 * w.w.
        notify("fitting logistic baseline")
        logistic = LogisticRegression(C=1.0 / (2.0 * L2 * n_train), max_iter=1000).fit(train_x, train_y)
        out["logistic"] = BaselineScores(logistic.predict_proba(val_x)[:, 1], logistic.predict_proba(test_x)[:, 1], True)
    else:
        out["zero_return"] = BaselineScores(np.zeros(n_val), np.zeros(n_test), learned=False)
        mean = float(train_y.mean())
        out["train_mean"] = BaselineScores(np.full(n_val, mean), np.full(n_test, mean), learned=False)
        # Ridge minimises |y - Xw|^2 + alpha w.w: alpha = L2 * n is our per-window penalty.
        notify("fitting linear baseline")
        ridge = Ridge(alpha=L2 * n_train).fit(train_x, train_y)
        out["linear"] = BaselineScores(ridge.predict(val_x), ridge.predict(test_x), True)
    notify("fitting gbdt baseline")
    gbdt, trees = fit_gbdt(task, train_x, train_y, val_x, val_y, select, seed)
    out["gbdt"] = BaselineScores(_gbdt_output(gbdt, val_x), _gbdt_output(gbdt, test_x), True, note=f"{trees} trees")
    return out
