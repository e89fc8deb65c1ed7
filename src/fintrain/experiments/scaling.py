"""Scaling-law fits: L(x) = E + A·x^-α over the distinct values of a swept axis, with a bootstrap
interval for α and a verdict in words.

The fit is nonlinear least squares in log space (``scipy.optimize.curve_fit`` on log L, so each
value weighs by its relative error, as in Kaplan et al. 2020 and Hoffmann et al. 2022), on the
mean test loss of each value, with x divided by its smallest value for conditioning (α does not
change, A absorbs the scale). E and A are kept non-negative; α may take either sign (-2..2), so
a loss that rises with x shows as α < 0 instead of being forced to a flat fit.

The interval for α is a percentile bootstrap. Each resample draws, for every value, its seeds
with replacement, and, when per-window test losses are given, one moving-block resample of the
test dates shared by every run (``fintrain.evaluate.bootstrap.block_counts``; all runs of a sweep
are tested on the same windows, so the draw is paired across values). Run folders do not yet
carry per-window losses, so ``fintrain report`` resamples seeds only and says so; the
``window_losses`` argument is the seam for the date blocks.

With three points a three-parameter curve fits exactly and says nothing, so fewer than
``MIN_VALUES`` distinct values give no fit and a reason instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import curve_fit

from fintrain.evaluate.bootstrap import block_counts, date_codes, percentile_interval

MIN_VALUES = 4
ALPHA_BOUNDS = (-2.0, 2.0)

# What the verdicts call each axis ("loss falls with size").
AXIS_WORDS = {"size": "size", "context": "context length", "fraction": "data fraction"}


@dataclass(frozen=True)
class ScalingFit:
    """The fit of one axis and what it says.

    Attributes:
        axis: ``size``, ``context`` or ``fraction``.
        values: the distinct x values, ascending.
        means: the mean test loss of each value.
        fitted: whether a curve was fitted (False: see ``reason``).
        e, a, alpha: the point fit, x measured in units of ``values[0]`` (None without a fit).
        alpha_ci: the bootstrap interval for α (None without one).
        ci: the interval's coverage.
        resamples: bootstrap resamples whose fit converged.
        method: what the interval resamples.
        verdict: the answer in words.
        reason: why there is no fit or no interval ("" when there is both).
    """

    axis: str
    values: tuple[float, ...]
    means: tuple[float, ...]
    fitted: bool
    e: float | None
    a: float | None
    alpha: float | None
    alpha_ci: tuple[float, float] | None
    ci: float
    resamples: int
    method: str
    verdict: str
    reason: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The fitted curve at ``x`` (in the axis's own units)."""
        if not self.fitted:
            raise ValueError(f"no fit on the {self.axis} axis: {self.reason}")
        return power_law(np.asarray(x, dtype=np.float64) / self.values[0], self.e, self.a, self.alpha)

    def to_json(self) -> dict[str, Any]:
        """The fit as plain JSON values (``report --json``)."""
        return {
            "axis": self.axis, "values": list(self.values), "mean_loss": list(self.means),
            "fitted": self.fitted, "E": self.e, "A": self.a, "alpha": self.alpha,
            "alpha_ci": list(self.alpha_ci) if self.alpha_ci else None, "ci": self.ci,
            "resamples": self.resamples, "method": self.method, "verdict": self.verdict,
            "reason": self.reason, "x_unit": self.values[0] if self.values else None,
        }


def power_law(x: np.ndarray, e: float, a: float, alpha: float) -> np.ndarray:
    """E + A·x^-α."""
    return e + a * np.power(x, -alpha)


def fit_power_law(x: Sequence[float], loss: Sequence[float]) -> tuple[float, float, float] | None:
    """(E, A, α) of L(x) = E + A·x^-α by least squares on log L; None when it does not converge.

    Args:
        x: positive values, already in convenient units (the smallest near 1).
        loss: positive losses, one per x.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(loss, dtype=np.float64)
    if np.any(y <= 0) or np.any(x <= 0) or not np.all(np.isfinite(y)):
        return None
    span = float(y.max() - y.min())
    p0 = (0.9 * float(y.min()), max(span, 1e-6 * float(y.max())) + 0.1 * float(y.min()), 0.3)
    lower = (0.0, 0.0, ALPHA_BOUNDS[0])
    upper = (np.inf, np.inf, ALPHA_BOUNDS[1])

    def log_curve(xs: np.ndarray, e: float, a: float, alpha: float) -> np.ndarray:
        return np.log(np.maximum(power_law(xs, e, a, alpha), 1e-300))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(log_curve, x, np.log(y), p0=p0, bounds=(lower, upper), maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    e, a, alpha = (float(p) for p in params)
    return (e, a, alpha) if all(math.isfinite(p) for p in (e, a, alpha)) else None


def _no_fit(axis: str, values: tuple[float, ...], means: tuple[float, ...], ci: float, reason: str) -> ScalingFit:
    return ScalingFit(axis, values, means, False, None, None, None, None, ci, 0, "", f"no fit: {reason}", reason)


def scaling_fit(
    axis: str,
    values: Sequence[float],
    losses: Sequence[Sequence[float]],
    *,
    window_losses: Sequence[Sequence[np.ndarray]] | None = None,
    dates: np.ndarray | None = None,
    block_days: int = 20,
    resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> ScalingFit:
    """Fit one axis's mean test loss to E + A·x^-α and bootstrap an interval for α.

    Args:
        axis: ``size``, ``context`` or ``fraction`` (names the verdict).
        values: the axis's value of each group (parameters, rows, fraction); any order.
        losses: each group's test loss per seed.
        window_losses: optional, each group's per-seed per-window test losses (each (N,), the
            same N test windows for every run); with ``dates`` (N,) the resamples also draw
            test-date blocks.
        dates: the test date of each window (needed with ``window_losses``).
        block_days: dates per block for the date resampling.
        resamples: bootstrap resamples.
        ci: interval coverage.
        seed: seeds the bootstrap.

    Returns:
        The fit; without one (fewer than 4 distinct values, a non-positive loss, no
        convergence) ``fitted`` is False and ``reason`` says why.
    """
    order = np.argsort(np.asarray(values, dtype=np.float64))
    xs = tuple(float(values[i]) for i in order)
    groups = [np.asarray(losses[i], dtype=np.float64) for i in order]
    means = tuple(float(g.mean()) if g.size else math.nan for g in groups)
    words = AXIS_WORDS.get(axis, axis)
    if len(set(xs)) != len(xs):
        return _no_fit(axis, xs, means, ci, f"two {words} values are the same ({', '.join(f'{x:g}' for x in xs)}); "
                       "their runs share one architecture")
    if len(xs) < MIN_VALUES:
        return _no_fit(axis, xs, means, ci, f"{len(xs)} distinct {words} value{'s' * (len(xs) != 1)}; "
                       f"E + A·x^-α has 3 parameters and needs at least {MIN_VALUES}")
    if any(not math.isfinite(m) or m <= 0 for m in means):
        return _no_fit(axis, xs, means, ci, "a mean test loss is missing or not positive")
    x = np.asarray(xs) / xs[0]
    point = fit_power_law(x, means)
    if point is None:
        return _no_fit(axis, xs, means, ci, "the least-squares fit did not converge")
    e, a, alpha = point

    use_dates = window_losses is not None
    if use_dates and dates is None:
        raise ValueError("window_losses need the dates of the test windows")
    if not use_dates and all(g.size < 2 for g in groups):
        return ScalingFit(axis, xs, means, True, e, a, alpha, None, ci, 0, "",
                          f"α = {alpha:.3f}, no interval: one seed per {words} value (use --seeds 3 or more)",
                          "one seed per value gives no interval")
    rng = np.random.default_rng(seed)
    if use_dates:
        per_run = [[np.asarray(w, dtype=np.float64) for w in (window_losses[i])] for i in order]
        codes, n_dates = date_codes(np.asarray(dates))
        weights = block_counts(n_dates, block_days, resamples, rng)[:, codes]  # (R, N)
        weights = weights / weights.sum(axis=1, keepdims=True)
        resampled = [np.stack([weights @ w for w in runs], axis=1) for runs in per_run]  # each (R, seeds)
        method = f"seeds and {block_days}-day blocks of test dates"
    else:
        resampled = [np.broadcast_to(g, (resamples, g.size)) for g in groups]
        method = "seeds (per-window test losses not available: test dates not resampled)"
    alphas = []
    for r in range(resamples):
        boot = []
        for runs in resampled:
            pick = rng.integers(0, runs.shape[1], size=runs.shape[1])
            boot.append(float(runs[r, pick].mean()))
        fit = fit_power_law(x, boot)
        if fit is not None:
            alphas.append(fit[2])
    if len(alphas) < resamples // 2:
        return ScalingFit(axis, xs, means, True, e, a, alpha, None, ci, len(alphas), method,
                          f"α = {alpha:.3f}, no interval: most bootstrap fits did not converge",
                          "most bootstrap fits did not converge")
    low, high = percentile_interval(np.asarray(alphas), ci)
    interval = f"{alpha:.2f} ({ci:.0%} CI {low:.2f}..{high:.2f})"
    if low > 0:
        verdict = f"loss falls with {words}: α = {interval}"
    elif high < 0:
        verdict = f"loss rises with {words}: α = {interval}"
    else:
        verdict = f"no detectable scaling: the interval for α includes 0 (α = {interval})"
    if any(abs(v - bound) < 1e-3 for v in (alpha, low, high) for bound in ALPHA_BOUNDS):
        verdict += (f"; the fit reaches the edge of α's search range ({ALPHA_BOUNDS[0]:g}..{ALPHA_BOUNDS[1]:g}): "
                    "the mean losses do not follow E + A·x^-α, so read the values, not α")
    return ScalingFit(axis, xs, means, True, e, a, alpha, (low, high), ci, len(alphas), method, verdict, "")
