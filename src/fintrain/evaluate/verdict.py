"""Everything a summary says about the test split: intervals, verdicts, the trading view, IC.

``assess`` takes the predictions of a run (one row per validation and test window: ``split``,
``date``, ``ticker``, ``label``, ``next_return`` and one score column per predictor, the
``predictions.parquet`` of a run folder) and returns what ``summary.json`` reports:

- ``test``/``baselines``: each predictor's test metrics, with 95% (``eval.ci``) moving-block
  bootstrap intervals over test dates;
- ``comparisons``: for each baseline, the paired difference model - baseline of the primary
  metric on the same resamples, its interval and a verdict: ``better`` or ``worse`` when the
  interval excludes 0, else ``indistinguishable``;
- ``trading``: the long/flat strategy of the model and of each learned baseline, and
  buy-and-hold, with the Sharpe difference against buy-and-hold and its interval;
- ``ic``: for universes of 5 or more tickers, IC, Rank IC and their IRs per predictor.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fintrain.config import EvalConfig
from fintrain.evaluate.bootstrap import block_counts, date_codes, percentile_interval
from fintrain.evaluate.ic import MIN_TICKERS, ic_summary
from fintrain.evaluate.metrics import HIGHER_IS_BETTER, primary_metric, task_metrics, weighted_metrics
from fintrain.evaluate.trading import (
    Panel,
    Strategy,
    buy_and_hold,
    choose_cut,
    long_flat,
    measures,
    weighted_sharpe,
)

MODEL = "PatchTST"
BUY_AND_HOLD = "buy_and_hold"
VERDICTS = ("better", "worse", "indistinguishable")
# Bootstrap weights are built this many (resample x window) cells at a time, so a large universe's
# test split does not need one R x N matrix in memory.
CHUNK_CELLS = 4_000_000


def verdict(metric: str, ci: Sequence[float]) -> str:
    """``better``/``worse`` when the interval of model - baseline excludes 0, else ``indistinguishable``.

    Better means higher for auc, accuracy, dir_acc and sharpe, lower for the losses.
    """
    lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0.0 <= hi:
        return "indistinguishable"
    higher = metric in HIGHER_IS_BETTER or metric == "sharpe"
    return "better" if (lo > 0) == higher else "worse"


@dataclass
class Assessment:
    """What ``assess`` found; ``summary()`` is the JSON part, ``equity`` feeds the plot."""

    metric: str
    test: dict[str, float]
    test_ci: dict[str, list[float]]
    baselines: dict[str, dict[str, Any]]
    comparisons: dict[str, dict[str, Any]]
    trading: dict[str, dict[str, Any]]
    ic: dict[str, dict[str, float]] | None
    equity: dict[str, Strategy] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The keys ``summary.json`` gains: test_ci, baselines (with ci), comparisons, trading, ic."""
        out: dict[str, Any] = {
            "test_ci": self.test_ci,
            "baselines": self.baselines,
            "comparisons": self.comparisons,
            "trading": self.trading,
        }
        if self.ic is not None:
            out["ic"] = self.ic
        return out


def _resample_chunks(counts: np.ndarray, n_windows: int) -> Iterator[slice]:
    step = max(1, CHUNK_CELLS // max(n_windows, 1))
    for start in range(0, counts.shape[0], step):
        yield slice(start, start + step)


def resampled_metrics(
    task: str, labels: np.ndarray, scores: dict[str, np.ndarray], codes: np.ndarray, counts: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """Each predictor's metrics under every resample: ``{name: {metric: (R,)}}``.

    Args:
        task: threshold, direction or return.
        labels: (N,) the windows' labels.
        scores: each predictor's (N,) scores on the same windows.
        codes: (N,) each window's date as an index into the resampled dates.
        counts: (R, n_dates) how often each date is drawn in each resample (``block_counts``).
    """
    boot: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in scores}
    for part in _resample_chunks(counts, len(labels)):
        weights = counts[part][:, codes]  # (r, N): each window counts as often as its date
        for name, score in scores.items():
            for m, values in weighted_metrics(task, labels, score, weights).items():
                boot[name].setdefault(m, []).append(values)
    return {name: {m: np.concatenate(v) for m, v in per.items()} for name, per in boot.items()}


def assess(
    predictions: pl.DataFrame,
    task: str,
    horizon: int,
    cfg: EvalConfig,
    block_days: int,
    learned: Sequence[str],
    seed: int = 0,
    model: str = MODEL,
) -> Assessment:
    """Intervals, verdicts, trading view and IC of a run's predictions (see the module docstring).

    Args:
        predictions: one row per window; ``split`` is ``val`` or ``test``; the score columns
            are ``model`` and every other column not among split/date/ticker/label/next_return.
        task: threshold, direction or return.
        horizon: the label horizon h (the trading view's sleeves).
        cfg: the eval section (bootstrap, ci, cost_bps).
        block_days: bootstrap block length in dates.
        learned: the baselines fitted to data; they get a trading view and a verdict line.
        seed: seed of the bootstrap resamples.
        model: the model's score column.
    """
    fixed = {"split", "date", "ticker", "label", "next_return"}
    baselines = [c for c in predictions.columns if c not in fixed and c != model]
    metric = primary_metric(task)
    test = predictions.filter(pl.col("split") == "test").sort(["date", "ticker"] if "ticker" in predictions.columns else ["date"])
    val = predictions.filter(pl.col("split") == "val").sort(["date", "ticker"] if "ticker" in predictions.columns else ["date"])
    labels = test["label"].to_numpy().astype(np.float64)
    dates = test["date"].to_numpy()
    tickers = test["ticker"].to_numpy() if "ticker" in test.columns else None
    predictors = [model, *baselines]
    scores = {name: test[name].to_numpy().astype(np.float64) for name in predictors}

    # One set of resamples of the test dates serves every predictor: the differences are paired.
    codes, n_dates = date_codes(dates)
    counts = block_counts(n_dates, block_days, cfg.bootstrap, np.random.default_rng(seed))
    resampled = resampled_metrics(task, labels, scores, codes, counts)

    def intervals(name: str) -> dict[str, list[float]]:
        return {m: list(percentile_interval(v, cfg.ci)) for m, v in resampled[name].items()}

    point = {name: task_metrics(task, labels, scores[name]) for name in predictors}
    comparisons = {}
    for name in baselines:
        diff_ci = list(percentile_interval(resampled[model][metric] - resampled[name][metric], cfg.ci))
        comparisons[name] = {
            "metric": metric,
            "diff": point[model][metric] - point[name][metric],
            "ci": diff_ci,
            "verdict": verdict(metric, diff_ci),
        }

    trading, equity = _trading(val, test, [model, *[b for b in baselines if b in learned]], horizon, cfg, counts)
    n_tickers = len(np.unique(tickers)) if tickers is not None else 1
    ic = None
    if n_tickers >= MIN_TICKERS:
        returns = test["next_return"].to_numpy()
        ic = {name: ic_summary(dates, scores[name], returns) for name in [model, *[b for b in baselines if b in learned]]}
    return Assessment(
        metric=metric,
        test=point[model],
        test_ci=intervals(model),
        baselines={name: {**point[name], "ci": intervals(name)} for name in baselines},
        comparisons=comparisons,
        trading=trading,
        ic=ic,
        equity=equity,
    )


def _panel(frame: pl.DataFrame) -> Panel:
    tickers = frame["ticker"].to_numpy() if "ticker" in frame.columns else None
    return Panel.of(frame["date"].to_numpy(), tickers, frame["next_return"].to_numpy())


def _trading(
    val: pl.DataFrame, test: pl.DataFrame, traders: list[str], horizon: int, cfg: EvalConfig, counts: np.ndarray
) -> tuple[dict[str, dict[str, Any]], dict[str, Strategy]]:
    """Each trader's long/flat strategy (cut chosen on validation) and buy-and-hold, on test dates."""
    val_panel, test_panel = _panel(val), _panel(test)
    hold = buy_and_hold(test_panel, cfg.cost_bps)
    hold_boot = weighted_sharpe(hold.returns, counts)
    out: dict[str, dict[str, Any]] = {}
    equity: dict[str, Strategy] = {}
    for name in traders:
        q, cut, val_sharpe = choose_cut(val_panel, val[name].to_numpy(), horizon, cfg.cost_bps)
        strategy = long_flat(test_panel, test[name].to_numpy(), cut, horizon, cfg.cost_bps)
        result = measures(strategy)
        diff_ci = list(percentile_interval(weighted_sharpe(strategy.returns, counts) - hold_boot, cfg.ci))
        hold_sharpe = measures(hold)["sharpe"]
        out[name] = {
            **result,
            "cut_quantile": q,
            "cut": cut,
            "val_sharpe": val_sharpe,
            "vs_buy_and_hold": {
                "metric": "sharpe",
                "diff": result["sharpe"] - hold_sharpe,
                "ci": diff_ci,
                "verdict": verdict("sharpe", diff_ci),
            },
        }
        equity[name] = strategy
    out[BUY_AND_HOLD] = measures(hold)
    equity[BUY_AND_HOLD] = hold
    return out, equity
