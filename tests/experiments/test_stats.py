"""Student-t quantiles and intervals against closed forms and published tables."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fintrain.experiments.stats import mean_interval, t_cdf, t_quantile, welch_interval


@pytest.mark.parametrize(
    "df, expected",  # two-sided 95% critical values from standard t tables
    [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (29, 2.0452), (120, 1.9799)],
)
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


@given(st.floats(-50, 50))
def test_t_cdf_matches_closed_forms(t):
    assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)  # Cauchy
    assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


@given(st.floats(0.51, 0.999), st.floats(0.5, 200))
def test_quantile_inverts_cdf_for_fractional_df(p, df):
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)
    assert t_quantile(1 - p, df) == pytest.approx(-t_quantile(p, df))


def test_mean_interval_by_hand():
    # mean 0.52, s = 0.01, n = 3: half width = 4.3027 * 0.01 / sqrt(3)
    i = mean_interval([0.51, 0.52, 0.53])
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert i.estimate == pytest.approx(0.52)
    assert (i.low, i.high) == pytest.approx((0.52 - half, 0.52 + half), abs=1e-6)
    assert i.df == 2 and i.n == 3


def test_one_value_has_no_interval():
    i = mean_interval([0.5])
    assert i.estimate == 0.5 and not i.has_interval


def test_welch_interval_by_hand():
    a, b = [0.51, 0.53, 0.52], [0.50, 0.49]
    i = welch_interval(a, b)
    va, vb = 0.0001 / 3, 0.00005 / 2
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 1)
    half = t_quantile(0.975, df) * math.sqrt(va + vb)
    assert i.df == pytest.approx(df) and i.df == pytest.approx(2.882, abs=1e-3)
    assert i.estimate == pytest.approx(0.025)
    assert (i.low, i.high) == pytest.approx((0.025 - half, 0.025 + half))
    assert not welch_interval([0.5], [0.4, 0.41]).has_interval
