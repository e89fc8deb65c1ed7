"""Task metrics: one value from a split, and the same metrics under bootstrap weights.

Point values come from scikit-learn (``roc_auc_score``, ``log_loss``, ``brier_score_loss``,
...), computed on the host in float64 (never on the device: MPS has no float64). The bootstrap
needs each metric over 1,000 resamples at once; ``weighted_metrics`` computes it from a
(resamples, rows) matrix of how often each row was drawn, so a resample is a row of weights
instead of a copied array, and the AUC of all resamples is one sorted pass (a loop over
``roc_auc_score(..., sample_weight=w)`` takes ~1 ms per resample). Each is tested against a
worked example and against scikit-learn in ``tests/evaluate/test_metrics.py``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from fintrain.config import SELECTABLE_METRICS

EPS = 1e-15
CLASSIFICATION_METRICS = ("auc", "accuracy", "brier", "log_loss", "pos_rate")
REGRESSION_METRICS = ("mse", "mae", "dir_acc")
# Measures where a larger value is better; for every other one (loss, brier, log_loss, mse, mae)
# smaller is better.
HIGHER_IS_BETTER = frozenset({"auc", "accuracy", "dir_acc"})


def is_classification(task: str) -> bool:
    """threshold and direction predict a probability; return predicts a value."""
    return task in ("threshold", "direction")


def primary_metric(task: str) -> str:
    """The metric a run reports as its headline: auc for classification, mse for return."""
    return "auc" if is_classification(task) else "mse"


def loss_metric(task: str) -> str:
    """The metric that is the mean of a per-window loss (``window_losses``): log_loss or mse."""
    return "log_loss" if is_classification(task) else "mse"


def window_losses(task: str, y: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Each window's loss: binary cross-entropy of the probability (classification; clipped to
    [1e-15, 1 - 1e-15]) or squared error (return). Their mean is ``loss_metric(task)``."""
    y = np.asarray(y, dtype=np.float64)
    if is_classification(task):
        p = np.clip(np.asarray(output, dtype=np.float64), EPS, 1 - EPS)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return (np.asarray(output, dtype=np.float64) - y) ** 2


def selection_metric(task: str, select_on: str) -> str:
    """What picks the best epoch: ``loss``, or a validation metric (``auto`` is the primary one)."""
    name = primary_metric(task) if select_on == "auto" else select_on
    kind = "classification" if is_classification(task) else "regression"
    if name != "loss" and name not in SELECTABLE_METRICS[kind]:
        raise ValueError(f"{name!r} is not a validation measure of task {task}")
    return name


def improves(name: str, value: float | None, best: float | None) -> bool:
    """Whether ``value`` of measure ``name`` beats ``best`` (None or NaN never does; anything beats None)."""
    if value is None or math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value > best if name in HIGHER_IS_BETTER else value < best


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN when only one class is present."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, np.asarray(p, dtype=np.float64)))


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """auc, accuracy (at 0.5), brier, log_loss and pos_rate (share predicted positive)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    predicted = (p >= 0.5).astype(np.float64)
    return {
        "auc": roc_auc(y, p),
        "accuracy": float(accuracy_score(y, predicted)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0.0, 1.0])),
        "pos_rate": float(np.mean(predicted)),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """mse, mae and dir_acc (share of windows whose predicted sign matches the outcome's)."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    return {
        "mse": float(mean_squared_error(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "dir_acc": float(np.mean((pred > 0) == (y > 0))),
    }


def task_metrics(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Metrics for a task; ``output`` is a probability (classification) or a value."""
    if is_classification(task):
        return classification_metrics(y, output)
    return regression_metrics(y, output)


def weighted_auc(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The AUC under each row of ``weights`` (R, N): row r counts window i ``weights[r, i]`` times.

    Per resample: sum over positives of their weight times the weight of negatives scored below
    them (plus half of those tied), over (positive weight x negative weight). NaN where a
    resample holds one class only.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    # Windows with the same score form one group: ties count one half.
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_p)) + 1))
    w_sorted = weights[:, order]  # (R, N)
    pos = y[order] == 1
    pos_w = np.add.reduceat(np.where(pos, w_sorted, 0.0), starts, axis=1)  # (R, G)
    neg_w = np.add.reduceat(np.where(pos, 0.0, w_sorted), starts, axis=1)  # (R, G)
    neg_below = np.cumsum(neg_w, axis=1) - neg_w  # negatives in lower groups
    pairs = pos_w.sum(axis=1) * neg_w.sum(axis=1)  # (R,)
    ordered = (pos_w * (neg_below + 0.5 * neg_w)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, ordered / pairs, np.nan)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (N,) under each row of ``weights`` (R, N)."""
    return weights @ values / weights.sum(axis=1)


def weighted_metrics(task: str, y: np.ndarray, output: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """``task_metrics`` under each row of ``weights`` (R, N): one array of R values per metric."""
    y = np.asarray(y, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if is_classification(task):
        p = np.clip(np.asarray(output, dtype=np.float64), 0.0, 1.0)
        predicted = p >= 0.5
        return {
            "auc": weighted_auc(y, p, weights),
            "accuracy": _weighted_mean((predicted == (y == 1)).astype(np.float64), weights),
            "brier": _weighted_mean((p - y) ** 2, weights),
            "log_loss": _weighted_mean(window_losses(task, y, p), weights),
            "pos_rate": _weighted_mean(predicted.astype(np.float64), weights),
        }
    pred = np.asarray(output, dtype=np.float64)
    return {
        "mse": _weighted_mean(window_losses(task, y, pred), weights),
        "mae": _weighted_mean(np.abs(pred - y), weights),
        "dir_acc": _weighted_mean(((pred > 0) == (y > 0)).astype(np.float64), weights),
    }
