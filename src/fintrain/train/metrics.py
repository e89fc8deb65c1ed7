"""Task metrics and the baselines every run is compared with.

Metrics are computed on the host in float64 NumPy (never on the device: MPS has no float64).
Each is tested against a worked example in ``tests/train/test_metrics.py``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

EPS = 1e-15
CLASSIFICATION_METRICS = ("auc", "accuracy", "brier", "log_loss", "pos_rate")
REGRESSION_METRICS = ("mse", "mae", "dir_acc")


def is_classification(task: str) -> bool:
    """threshold and direction predict a probability; return predicts a value."""
    return task in ("threshold", "direction")


def primary_metric(task: str) -> str:
    """The validation metric a run reports as its headline."""
    return "auc" if is_classification(task) else "mse"


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic with average ranks for ties.

    NaN when only one class is present.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    ranks = np.empty(len(p), dtype=np.float64)
    # Average rank over each run of tied scores.
    boundaries = np.flatnonzero(np.diff(sorted_p)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(p)]))
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0  # ranks are 1-based
    rank_sum_pos = ranks[y == 1].sum()
    return float((rank_sum_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """auc, accuracy (at 0.5), brier, log_loss and pos_rate (share predicted positive)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    pc = np.clip(p, EPS, 1 - EPS)
    predicted = p >= 0.5
    return {
        "auc": roc_auc(y, p),
        "accuracy": float(np.mean(predicted == (y == 1))),
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
        "pos_rate": float(np.mean(predicted)),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """mse, mae and dir_acc (share of windows whose predicted sign matches the outcome's)."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    return {
        "mse": float(np.mean((pred - y) ** 2)),
        "mae": float(np.mean(np.abs(pred - y))),
        "dir_acc": float(np.mean((pred > 0) == (y > 0))),
    }


def task_metrics(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Metrics for a task; ``output`` is a probability (classification) or a value."""
    if is_classification(task):
        return classification_metrics(y, output)
    return regression_metrics(y, output)


def to_host_float64(t: torch.Tensor) -> torch.Tensor:
    """A float64 copy on the host: copy first, then cast.

    ``t.to("cpu", torch.float64)`` casts and copies in one call, which on MPS is a float64 copy
    that Metal cannot make: torch <= 2.13 raises "Cannot convert a MPS Tensor to float64", and
    2.14 has been reported to return zeros (PyTorch issues #197715, #197722).
    """
    return t.detach().cpu().double()


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, iters: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-regularised logistic regression by L-BFGS on the host (float64); returns (w, b)."""
    x, y = to_host_float64(x), to_host_float64(y)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def fit_linear(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression in closed form on the host (float64); returns (w, b)."""
    x, y = to_host_float64(x), to_host_float64(y)
    x_mean, y_mean = x.mean(0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc + l2 * len(x) * torch.eye(x.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(gram, xc.T @ yc)
    return w, y_mean - x_mean @ w


def baselines(
    task: str,
    train_y: torch.Tensor,
    test_y: torch.Tensor,
    train_last_rows: torch.Tensor,
    test_last_rows: torch.Tensor,
) -> dict[str, dict[str, float]]:
    """Metrics on the test rows of predictors that need no model, and of one learned one.

    Classification: ``base_rate`` (the training positive rate for every window),
    ``always_up`` (probability 1) and ``logistic`` (logistic regression on each window's
    last-row features, fitted on the training windows). Return: ``zero_return``,
    ``train_mean`` and ``linear`` (ridge regression on the same features).
    """
    y_test = to_host_float64(test_y).numpy()
    n = len(y_test)
    out: dict[str, dict[str, float]] = {}
    if is_classification(task):
        rate = float(to_host_float64(train_y).mean())
        out["base_rate"] = classification_metrics(y_test, np.full(n, rate))
        out["always_up"] = classification_metrics(y_test, np.ones(n))
        w, b = fit_logistic(train_last_rows, train_y)
        logits = to_host_float64(test_last_rows) @ w + b
        out["logistic"] = classification_metrics(y_test, torch.sigmoid(logits).numpy())
    else:
        out["zero_return"] = regression_metrics(y_test, np.zeros(n))
        mean = float(to_host_float64(train_y).mean())
        out["train_mean"] = regression_metrics(y_test, np.full(n, mean))
        w, b = fit_linear(train_last_rows, train_y)
        out["linear"] = regression_metrics(y_test, (to_host_float64(test_last_rows) @ w + b).numpy())
    return out
