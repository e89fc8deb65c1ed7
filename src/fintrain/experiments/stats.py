"""Small-sample statistics for comparing budgets across seeds: Student-t intervals.

A sweep has a handful of seeds per budget, so the question "is this difference more than seed
noise?" is answered with t-intervals over seeds: one-sample for a budget's mean, Welch's for the
difference of two budgets' means (their seeds are independent models). The t distribution is
computed here (regularised incomplete beta by its continued fraction) rather than pulling in
SciPy for one function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300

    def guard(v: float) -> float:
        return v if abs(v) > tiny else tiny

    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 / guard(1.0 - qab * x / qap)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))  # even step
        d = 1.0 / guard(1.0 + aa * d)
        c = guard(1.0 + aa / c)
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))  # odd step
        d = 1.0 / guard(1.0 + aa * d)
        c = guard(1.0 + aa / c)
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float, complement: float | None = None) -> float:
    """The regularised incomplete beta function I_x(a, b) for 0 <= x <= 1.

    ``complement`` is 1 - x when the caller knows it more precisely than ``1 - x`` computes
    (x close to 1 loses digits to cancellation).
    """
    y = 1.0 - x if complement is None else complement
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    # The continued fraction converges fast only on one side of the mean; use the symmetry beyond it.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, y) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom (df need not be whole)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tt = t * t
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + tt), tt / (df + tt))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on t_cdf)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Interval:
    """A mean (or difference of means) with its two-sided confidence interval.

    ``low`` and ``high`` are None when the data cannot give an interval (fewer than two
    values in a group).
    """

    estimate: float
    low: float | None
    high: float | None
    n: int
    df: float | None

    @property
    def has_interval(self) -> bool:
        """True when there were enough values for an interval."""
        return self.low is not None and self.high is not None


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else math.nan
    return mean, var


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean with a t-interval over the values (seeds): mean +- t * s / sqrt(n)."""
    if not values:
        raise ValueError("no values")
    mean, var = _mean_var(values)
    n = len(values)
    if n < 2:
        return Interval(mean, None, None, n, None)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(var / n)
    return Interval(mean, mean - half, mean + half, n, float(n - 1))


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean(a) - mean(b) with Welch's t-interval (unequal variances, Welch-Satterthwaite df)."""
    if not a or not b:
        raise ValueError("both groups need values")
    mean_a, var_a = _mean_var(a)
    mean_b, var_b = _mean_var(b)
    diff = mean_a - mean_b
    if len(a) < 2 or len(b) < 2:
        return Interval(diff, None, None, len(a) + len(b), None)
    se_a, se_b = var_a / len(a), var_b / len(b)
    se = math.sqrt(se_a + se_b)
    if se == 0.0:
        return Interval(diff, diff, diff, len(a) + len(b), math.inf)
    df = (se_a + se_b) ** 2 / (se_a**2 / (len(a) - 1) + se_b**2 / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    return Interval(diff, diff - half, diff + half, len(a) + len(b), df)
