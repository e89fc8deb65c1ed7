"""The moving-block bootstrap: its resamples, and intervals that cover a known AUC."""

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.signal import lfilter

from fintrain.evaluate.bootstrap import block_counts, percentile_interval, window_weights
from fintrain.evaluate.metrics import weighted_auc


def test_block_counts_draw_runs_of_consecutive_dates():
    rng = np.random.default_rng(0)
    counts = block_counts(10, 4, 200, rng)
    assert counts.shape == (200, 10)
    assert (counts.sum(axis=1) == 10).all()  # every resample has as many dates as the data
    # Blocks of 4 over 10 dates: 3 blocks of 4 cut to 10; each start covers 4 neighbours, so the
    # drawn dates of a resample form at most 3 runs.
    for row in counts:
        drawn = np.flatnonzero(row > 0)
        runs = 1 + int(np.sum(np.diff(drawn) > 1))
        assert runs <= 3
    # block_days=1 is the i.i.d. bootstrap: multinomial counts, so some date is usually drawn twice.
    iid = block_counts(10, 1, 200, rng)
    assert (iid.max(axis=1) >= 2).mean() > 0.9


def test_universe_dates_move_together():
    dates = np.array(["2020-01-02", "2020-01-02", "2020-01-03", "2020-01-03", "2020-01-06", "2020-01-06"])
    weights = window_weights(dates, block_days=2, resamples=50, seed=1)
    # The two tickers of a date always carry the same weight.
    np.testing.assert_array_equal(weights[:, 0::2], weights[:, 1::2])
    assert (weights.sum(axis=1) == 6).all()


def test_percentile_interval_drops_nan_resamples():
    values = np.r_[np.arange(1, 101, dtype=float), np.nan]
    lo, hi = percentile_interval(values, 0.9)
    assert (lo, hi) == pytest.approx((np.percentile(np.arange(1, 101), 5), np.percentile(np.arange(1, 101), 95)))
    assert all(math.isnan(v) for v in percentile_interval(np.array([np.nan]), 0.95))


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """A stationary AR(1) series with unit variance."""
    shocks = rng.standard_normal(n) * math.sqrt(1 - phi**2)
    shocks[0] = rng.standard_normal()
    return lfilter([1.0], [1.0, -phi], shocks)


@pytest.mark.slow
def test_block_bootstrap_interval_covers_a_known_auc():
    # Labels and scores that are both autocorrelated, as overlapping windows make them:
    # y = 1[z > 0] and s = delta * y + e, with z and e independent AR(1) series of unit variance.
    # The AUC is P(s_pos > s_neg) = Phi(delta / sqrt(2)) whatever the autocorrelation.
    n, phi, delta, datasets, resamples = 500, 0.7, 0.8, 200, 500
    true_auc = NormalDist().cdf(delta / math.sqrt(2))
    rng = np.random.default_rng(0)
    covered = {"block": 0, "iid": 0}
    for _ in range(datasets):
        y = (_ar1(rng, n, phi) > 0).astype(float)
        s = delta * y + _ar1(rng, n, phi)
        for name, block in (("block", 20), ("iid", 1)):
            lo, hi = percentile_interval(weighted_auc(y, s, block_counts(n, block, resamples, rng)), 0.95)
            covered[name] += lo <= true_auc <= hi
    assert covered["block"] >= 0.9 * datasets
    # The i.i.d. bootstrap treats neighbours as independent: its intervals are too narrow.
    assert covered["iid"] <= covered["block"] - 0.08 * datasets
