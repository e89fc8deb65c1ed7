"""The trading view against hand-computed examples: costs, sleeves, the portfolio, the cut."""

import math

import numpy as np
import pytest

from fintrain.evaluate.trading import (
    Panel,
    buy_and_hold,
    choose_cut,
    long_flat,
    max_drawdown,
    measures,
    sleeve_positions,
    weighted_sharpe,
)


def _one(next_return):
    dates = np.arange(len(next_return))
    return Panel.of(dates, None, np.asarray(next_return, dtype=float))


def test_long_flat_with_costs_worked_example():
    panel = _one([0.01, -0.02, 0.03, -0.01])
    strategy = long_flat(panel, np.array([0.9, 0.1, 0.8, 0.7]), cut=0.5, horizon=1, cost_bps=10)
    # Positions 1, 0, 1, 1 (entering from flat on day 1); 10 bps per unit of turnover.
    np.testing.assert_allclose(strategy.returns, [0.01 - 0.001, -0.001, 0.03 - 0.001, -0.01])
    m = measures(strategy)
    assert m["turnover"] == pytest.approx(0.75) and m["exposure"] == pytest.approx(0.75)
    assert m["ann_return"] == pytest.approx(252 * 0.027 / 4)
    r = np.array([0.009, -0.001, 0.029, -0.01])
    assert m["ann_vol"] == pytest.approx(math.sqrt(252) * r.std())
    assert m["sharpe"] == pytest.approx(m["ann_return"] / m["ann_vol"])
    # The last day's -1% from the peak is the largest fall.
    assert m["max_drawdown"] == pytest.approx(0.01)
    # The score at the cut is long: "at or above".
    assert long_flat(panel, np.array([0.5, 0.4, 0.4, 0.4]), 0.5, 1, 0).returns[0] == pytest.approx(0.01)


def test_overlapping_sleeves_worked_example():
    # h = 2: each day's signal opens a sleeve of half the capital held two days.
    np.testing.assert_allclose(sleeve_positions(np.array([[1.0], [0], [0], [1], [1]]), 2).ravel(),
                               [0.5, 0.5, 0.0, 0.5, 1.0])
    panel = _one([0.02, 0.01, -0.01, 0.02, -0.03])
    strategy = long_flat(panel, np.array([1.0, 0, 0, 1, 1]), cut=0.5, horizon=2, cost_bps=20)
    turnover = np.array([0.5, 0.0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(strategy.returns, np.array([0.01, 0.005, 0.0, 0.01, -0.03]) - 0.002 * turnover)
    assert measures(strategy)["turnover"] == pytest.approx(0.4)
    assert measures(strategy)["exposure"] == pytest.approx(0.5)


def test_equal_weight_portfolio_of_tickers_and_buy_and_hold():
    # Ticker B has no window on the first date: that day A carries the whole portfolio.
    dates = np.array([1, 2, 2, 3, 3])
    tickers = np.array(["A", "A", "B", "A", "B"])
    rets = np.array([0.01, 0.02, -0.04, 0.03, 0.01])
    panel = Panel.of(dates, tickers, rets)
    strategy = long_flat(panel, np.array([1.0, 1.0, 0.0, 0.0, 1.0]), cut=0.5, horizon=1, cost_bps=0)
    np.testing.assert_allclose(strategy.returns, [0.01, 0.01, 0.005])
    np.testing.assert_allclose(strategy.exposure, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(strategy.turnover, [1.0, 0.0, 1.0])  # A in (day 1); A out, B in (day 3): 2 x 1/2
    hold = buy_and_hold(panel, cost_bps=10)
    # Entering A on day 1 and B on day 2 (half the capital) costs once each.
    np.testing.assert_allclose(hold.returns, [0.01 - 0.001, (0.02 - 0.04) / 2 - 0.0005, 0.02])


def test_cut_is_the_validation_quantile_with_the_best_sharpe():
    scores = np.arange(10) / 10
    rets = np.where(scores >= 0.8, 0.01, -0.01)
    panel = _one(rets)
    q, cut, val_sharpe = choose_cut(panel, scores, horizon=1, cost_bps=0)
    # q=0.8 trades the two +1% days; 0.7 adds a -1% day, 0.9 drops a +1% day.
    assert q == 0.8 and cut == pytest.approx(np.quantile(scores, 0.8))
    assert val_sharpe == pytest.approx(math.sqrt(252) * 0.002 / 0.004)


def test_max_drawdown_and_weighted_sharpe():
    assert max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5)
    assert max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(0.1)  # the start is the first peak
    r = np.array([0.01, -0.02, 0.03, 0.0])
    w = np.array([[1.0, 1, 1, 1], [2, 0, 1, 1]])
    got = weighted_sharpe(r, w)
    assert got[0] == pytest.approx(math.sqrt(252) * r.mean() / r.std())
    repeated = np.array([0.01, 0.01, 0.03, 0.0])
    assert got[1] == pytest.approx(math.sqrt(252) * repeated.mean() / repeated.std())
