"""The trading view of a predictor: a long/flat strategy from its scores, and what it earned.

- The signal at close t is 1 when the score is at or above a cut, else 0. The cut is a quantile
  (0.5 to 0.9, step 0.1) of the predictor's **validation** scores: the one whose strategy had the
  best validation Sharpe. The test period only applies it.
- The position is the mean of the last h daily signals (h the label horizon): h overlapping
  sleeves, each opened on one day's signal and held h days. Before the first h days the sleeves
  not yet opened are cash.
- The position held at close t earns the return from close t to close t+1, less
  ``cost_bps`` x 1e-4 per unit of turnover |position_t - position_{t-1}| (the position before
  the first day is 0, so entering costs too).
- Several tickers: each ticker trades its own long/flat position, and the portfolio holds them in
  equal weight (1/K of the capital per ticker present that day). Buy-and-hold holds every ticker
  present, in equal weight, all the time.

Measures on the daily portfolio returns r (REFERENCE.md): annualized return 252 mean(r),
annualized volatility sqrt(252) std(r), Sharpe their ratio (zero risk-free rate), max drawdown
the largest fall of prod(1 + r) from its running peak (a fraction), turnover mean |Δposition|,
exposure the mean position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DAYS_PER_YEAR = 252
CUT_QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Panel:
    """Values of windows laid out as (dates, tickers); ``present`` marks the cells that hold a window."""

    dates: np.ndarray  # (D,) sorted distinct dates
    present: np.ndarray  # (D, K) bool
    next_return: np.ndarray  # (D, K) close t -> t+1, 0 where absent
    rows: np.ndarray  # (D, K) index of the window in the input, -1 where absent

    @classmethod
    def of(cls, dates: np.ndarray, tickers: np.ndarray | None, next_return: np.ndarray) -> Panel:
        """Lay out windows given by date, ticker (None: one ticker) and next return."""
        dates = np.asarray(dates)
        unique_dates, d = np.unique(dates, return_inverse=True)
        if tickers is None:
            k, n_tickers = np.zeros(len(dates), dtype=np.int64), 1
        else:
            unique_tickers, k = np.unique(np.asarray(tickers), return_inverse=True)
            n_tickers = len(unique_tickers)
        rows = np.full((len(unique_dates), n_tickers), -1, dtype=np.int64)
        rows[d.reshape(-1), k.reshape(-1)] = np.arange(len(dates))
        present = rows >= 0
        ret = np.where(present, np.asarray(next_return, dtype=np.float64)[np.maximum(rows, 0)], 0.0)
        return cls(unique_dates, present, ret, rows)

    def lay_out(self, values: np.ndarray) -> np.ndarray:
        """Per-window ``values`` as a (D, K) array, 0 where absent."""
        return np.where(self.present, np.asarray(values, dtype=np.float64)[np.maximum(self.rows, 0)], 0.0)


def sleeve_positions(signal: np.ndarray, horizon: int) -> np.ndarray:
    """The mean of the last ``horizon`` signals along the dates (axis 0); missing ones count 0."""
    signal = np.asarray(signal, dtype=np.float64)
    if horizon == 1:
        return signal
    csum = np.cumsum(signal, axis=0)
    lagged = np.zeros_like(csum)
    lagged[horizon:] = csum[:-horizon]
    return (csum - lagged) / horizon


@dataclass(frozen=True)
class Strategy:
    """Daily portfolio returns (after costs), turnover and position of a strategy."""

    dates: np.ndarray
    returns: np.ndarray  # (D,)
    turnover: np.ndarray  # (D,)
    exposure: np.ndarray  # (D,)


def run_strategy(panel: Panel, position: np.ndarray, cost_bps: float) -> Strategy:
    """The equal-weight portfolio of per-ticker positions (D, K) on ``panel``'s returns."""
    position = np.where(panel.present, position, 0.0)
    previous = np.vstack([np.zeros((1, position.shape[1])), position[:-1]])
    change = np.abs(position - previous)
    per_ticker = position * panel.next_return - cost_bps * 1e-4 * change  # (D, K)
    n_present = np.maximum(panel.present.sum(axis=1, keepdims=True), 1)
    weight = panel.present / n_present  # equal weight over the tickers of each date
    return Strategy(
        panel.dates,
        (weight * per_ticker).sum(axis=1),
        (weight * change).sum(axis=1),
        (weight * position).sum(axis=1),
    )


def sharpe(returns: np.ndarray) -> float:
    """Annualized Sharpe ratio (zero risk-free rate); NaN when the returns do not vary."""
    returns = np.asarray(returns, dtype=np.float64)
    std = returns.std(ddof=0) if returns.size else 0.0
    if not std > 1e-15:
        return math.nan
    return float(math.sqrt(DAYS_PER_YEAR) * returns.mean() / std)


def max_drawdown(returns: np.ndarray) -> float:
    """The largest fall of the equity curve prod(1 + r) from its running peak (which starts at 1)."""
    equity = np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    return float(np.max(1.0 - equity / peak)) if equity.size else 0.0


def measures(strategy: Strategy) -> dict[str, float]:
    """Annualized return and volatility, Sharpe, max drawdown, turnover, exposure, days."""
    r = strategy.returns
    return {
        "ann_return": float(DAYS_PER_YEAR * r.mean()),
        "ann_vol": float(math.sqrt(DAYS_PER_YEAR) * r.std(ddof=0)),
        "sharpe": sharpe(r),
        "max_drawdown": max_drawdown(r),
        "turnover": float(strategy.turnover.mean()),
        "exposure": float(strategy.exposure.mean()),
        "days": int(len(r)),
    }


def long_flat(panel: Panel, scores: np.ndarray, cut: float, horizon: int, cost_bps: float) -> Strategy:
    """The long/flat strategy of per-window ``scores`` at ``cut``, with h overlapping sleeves."""
    signal = panel.present & (panel.lay_out(scores) >= cut)
    return run_strategy(panel, sleeve_positions(signal, horizon), cost_bps)


def buy_and_hold(panel: Panel, cost_bps: float) -> Strategy:
    """Every ticker held in equal weight all the time (entering costs once)."""
    return run_strategy(panel, panel.present.astype(np.float64), cost_bps)


def choose_cut(panel: Panel, scores: np.ndarray, horizon: int, cost_bps: float) -> tuple[float, float, float]:
    """The cut with the best validation Sharpe among the score quantiles 0.5 .. 0.9.

    Returns:
        (quantile, cut, validation Sharpe); the lowest quantile wins ties, and 0.5 is taken
        when no quantile gives a Sharpe (a strategy that never trades).
    """
    scores = np.asarray(scores, dtype=np.float64)
    best = (CUT_QUANTILES[0], float(np.quantile(scores, CUT_QUANTILES[0])), math.nan)
    for q in CUT_QUANTILES:
        cut = float(np.quantile(scores, q))
        value = sharpe(long_flat(panel, scores, cut, horizon, cost_bps).returns)
        if not math.isnan(value) and (math.isnan(best[2]) or value > best[2]):
            best = (q, cut, value)
    return best


def weighted_sharpe(returns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The annualized Sharpe ratio of daily ``returns`` (D,) under each row of bootstrap ``weights`` (R, D)."""
    total = weights.sum(axis=1)
    mean = weights @ returns / total
    var = weights @ returns**2 / total - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 1e-15, math.sqrt(DAYS_PER_YEAR) * mean / std, np.nan)
