"""Moving-block bootstrap over test dates (Künsch 1989), as weights on the test windows.

Neighbouring test windows overlap and their labels look h days ahead, so they are dependent,
and an i.i.d. bootstrap gives intervals that are too narrow. A resample here is a run of blocks
of ``block_days`` consecutive dates with uniformly drawn starts, cut to the number of dates.
Under a universe all tickers of a date move together: dates are resampled, not windows.

A resample is stored as how often each window was drawn (a row of an (R, N) weight matrix), so a
metric of every resample is a matrix product (``fintrain.evaluate.metrics.weighted_metrics``).
For a model - baseline difference the same weights serve both: a paired bootstrap.
"""

from __future__ import annotations

import numpy as np


def block_counts(n_dates: int, block_days: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n_dates`` dates is drawn in each resample: (resamples, n_dates) floats.

    Each resample concatenates ceil(n / b) blocks of b = min(block_days, n) consecutive dates
    (starts uniform over the n - b + 1 possible) and keeps the first n dates. ``block_days=1``
    is the i.i.d. bootstrap.
    """
    if n_dates < 1:
        raise ValueError("no dates to resample")
    b = max(1, min(block_days, n_dates))
    k = -(-n_dates // b)
    starts = rng.integers(0, n_dates - b + 1, size=(resamples, k))
    drawn = (starts[:, :, None] + np.arange(b)).reshape(resamples, k * b)[:, :n_dates]  # (R, n)
    flat = drawn + (np.arange(resamples) * n_dates)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * n_dates).reshape(resamples, n_dates).astype(np.float64)


def date_codes(dates: np.ndarray) -> tuple[np.ndarray, int]:
    """Each window's date as an index into the sorted distinct dates, and how many there are."""
    unique, codes = np.unique(np.asarray(dates), return_inverse=True)
    return codes.reshape(-1), len(unique)


def window_weights(dates: np.ndarray, block_days: int, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap weights of windows (R, N): dates are block-resampled and each window takes its date's count."""
    codes, n_dates = date_codes(dates)
    counts = block_counts(n_dates, block_days, resamples, np.random.default_rng(seed))
    return counts[:, codes]


def percentile_interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    """The central ``ci`` percentile interval of bootstrap values; NaN resamples are left out."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - ci) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return (float(lo), float(hi))
