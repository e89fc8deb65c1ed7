"""Scaling-law fits: a known exponent is recovered, flat data is called flat, too few values say why."""

from __future__ import annotations

import numpy as np
import pytest

from fintrain.experiments.scaling import fit_power_law, power_law, scaling_fit

SIZES = [50e3, 100e3, 300e3, 1e6, 2e6, 5e6]


def _seed_losses(curve: np.ndarray, seeds: int, noise: float, rng: np.random.Generator) -> list[list[float]]:
    return [list(c + rng.normal(0.0, noise, seeds)) for c in curve]


def test_point_fit_is_exact_on_a_noiseless_curve() -> None:
    x = np.asarray(SIZES) / SIZES[0]
    e, a, alpha = fit_power_law(x, power_law(x, 0.6, 0.3, 0.25))
    assert (e, a, alpha) == pytest.approx((0.6, 0.3, 0.25), rel=1e-3)


def test_recovers_a_known_alpha_within_its_interval() -> None:
    rng = np.random.default_rng(7)
    curve = power_law(np.asarray(SIZES) / SIZES[0], 0.6, 0.3, 0.25)
    fit = scaling_fit("size", SIZES, _seed_losses(curve, 3, 0.004, rng), resamples=200, seed=1)
    low, high = fit.alpha_ci
    assert low < 0.25 < high and low > 0
    assert high - low < 0.3
    assert fit.verdict.startswith("loss falls with size: α = ")
    assert f"(95% CI {low:.2f}..{high:.2f})" in fit.verdict
    assert "seeds" in fit.method


def test_flat_data_is_no_detectable_scaling() -> None:
    rng = np.random.default_rng(3)
    losses = _seed_losses(np.full(len(SIZES), 0.69), 3, 0.004, rng)
    fit = scaling_fit("size", SIZES, losses, resamples=200, seed=1)
    assert fit.fitted and fit.alpha_ci[0] <= 0 <= fit.alpha_ci[1]
    assert fit.verdict.startswith("no detectable scaling: the interval for α includes 0")


def test_fewer_than_four_values_give_no_fit_and_say_why() -> None:
    fit = scaling_fit("size", [2e6, 20e6, 200e6], [[0.69, 0.7], [0.68, 0.69], [0.68, 0.7]])
    assert not fit.fitted and fit.alpha is None
    assert fit.verdict == "no fit: 3 distinct size values; E + A·x^-α has 3 parameters and needs at least 4"
    assert fit.to_json()["reason"].startswith("3 distinct size values")


def test_one_seed_per_value_has_no_interval() -> None:
    curve = power_law(np.asarray(SIZES) / SIZES[0], 0.6, 0.3, 0.25)
    fit = scaling_fit("context", SIZES, [[c] for c in curve])
    assert fit.alpha == pytest.approx(0.25, rel=1e-3) and fit.alpha_ci is None
    assert "no interval: one seed per context length value" in fit.verdict


def test_date_blocks_resample_the_shared_test_windows() -> None:
    rng = np.random.default_rng(11)
    n = 400
    dates = np.repeat(np.arange(200), 2)  # two tickers a date: dates move together
    shock = rng.normal(0.0, 0.05, n)      # the same hard windows for every model (paired)
    curve = power_law(np.asarray(SIZES) / SIZES[0], 0.6, 0.3, 0.25)
    windows = [[c + shock + rng.normal(0.0, 0.02, n) for _ in range(2)] for c in curve]
    losses = [[float(w.mean()) for w in runs] for runs in windows]
    fit = scaling_fit("size", SIZES, losses, window_losses=windows, dates=dates, block_days=10,
                      resamples=200, seed=2)
    assert fit.alpha_ci[0] < 0.25 < fit.alpha_ci[1] and fit.alpha_ci[0] > 0
    assert fit.method == "seeds and 10-day blocks of test dates"
    with pytest.raises(ValueError, match="dates"):
        scaling_fit("size", SIZES, losses, window_losses=windows)


def test_a_fit_pinned_to_the_edge_of_the_alpha_range_says_so() -> None:
    """The demo sweep's shape: the loss dips then rises, so the fit runs to α's bound."""
    rng = np.random.default_rng(5)
    means = np.asarray([0.453, 0.443, 0.454, 0.501])
    fit = scaling_fit("size", SIZES[:4], _seed_losses(means, 3, 0.004, rng), resamples=200, seed=1)
    assert fit.fitted
    assert "the fit reaches the edge of α's search range (-2..2)" in fit.verdict
    # A fit inside the range carries no such note (the known-α case above).
    curve = power_law(np.asarray(SIZES) / SIZES[0], 0.6, 0.3, 0.25)
    inside = scaling_fit("size", SIZES, _seed_losses(curve, 3, 0.004, rng), resamples=200, seed=1)
    assert "edge of α's search range" not in inside.verdict
