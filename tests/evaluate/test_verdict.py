"""assess: intervals, paired verdicts, the trading view and IC from a predictions frame."""

import math

import numpy as np
import polars as pl
import pytest

from fintrain.config import EvalConfig
from fintrain.evaluate.verdict import BUY_AND_HOLD, assess, verdict


def test_verdict_reads_the_interval_by_the_metric_direction():
    assert verdict("auc", [0.01, 0.05]) == "better"
    assert verdict("auc", [-0.058, -0.004]) == "worse"
    assert verdict("auc", [-0.01, 0.02]) == "indistinguishable"
    assert verdict("mse", [-0.002, -0.001]) == "better"  # a lower error is better
    assert verdict("sharpe", [0.1, 0.4]) == "better"
    assert verdict("auc", [math.nan, math.nan]) == "indistinguishable"


def _predictions(tickers: list[str], n_dates: int, seed: int = 0) -> pl.DataFrame:
    """Validation and test windows whose label the model sees clearly and 'noisy' barely."""
    rng = np.random.default_rng(seed)
    frames = []
    for split, offset in (("val", 0), ("test", n_dates)):
        dates = np.repeat(np.arange(offset, offset + n_dates), len(tickers))
        n = len(dates)
        label = (rng.random(n) < 0.3).astype(float)
        frames.append(pl.DataFrame({
            "split": [split] * n,
            "date": dates,
            "ticker": np.tile(tickers, n_dates),
            "label": label,
            "next_return": np.where(label == 1, 0.01, -0.002) + rng.normal(0, 0.002, n),
            "PatchTST": np.clip(0.3 + 0.4 * label + rng.normal(0, 0.1, n), 0, 1),
            "base_rate": np.full(n, 0.3),
            "noisy": np.clip(0.3 + 0.02 * label + rng.normal(0, 0.2, n), 0, 1),
            "copy": np.clip(0.3 + 0.4 * label + rng.normal(0, 0.1, n), 0, 1),
        }))
    frames[1] = frames[1].with_columns(pl.col("PatchTST").alias("copy"))
    return pl.concat(frames)


def test_assess_one_ticker():
    predictions = _predictions(["MSFT"], 300)
    cfg = EvalConfig(bootstrap=200)
    a = assess(predictions, "threshold", 1, cfg, block_days=20, learned=["noisy", "copy"], seed=0)
    test = predictions.filter(pl.col("split") == "test")
    assert a.test["auc"] > 0.95
    lo, hi = a.test_ci["auc"]
    assert lo <= a.test["auc"] <= hi and hi - lo < 0.05
    assert a.comparisons["base_rate"] == {"metric": "auc", "diff": pytest.approx(a.test["auc"] - 0.5),
                                          "ci": a.comparisons["base_rate"]["ci"], "verdict": "better"}
    assert a.comparisons["noisy"]["verdict"] == "better"
    # The same scores on the same resamples: a difference of exactly 0, indistinguishable.
    assert a.comparisons["copy"]["ci"] == [0.0, 0.0] and a.comparisons["copy"]["verdict"] == "indistinguishable"
    assert a.baselines["base_rate"]["ci"]["auc"] == [0.5, 0.5]
    assert set(a.trading) == {"PatchTST", "noisy", "copy", BUY_AND_HOLD}
    # The model's cut keeps the up days, so it beats holding through the down days.
    assert a.trading["PatchTST"]["sharpe"] > a.trading[BUY_AND_HOLD]["sharpe"]
    assert a.trading["PatchTST"]["vs_buy_and_hold"]["verdict"] == "better"
    assert a.trading[BUY_AND_HOLD]["days"] == test.height
    assert a.ic is None and "ic" not in a.summary()


def test_assess_universe_reports_ic():
    predictions = _predictions(["A", "B", "C", "D", "E"], 120, seed=1)
    a = assess(predictions, "threshold", 2, EvalConfig(bootstrap=100), block_days=20, learned=["noisy"], seed=0)
    assert set(a.ic) == {"PatchTST", "noisy"}
    assert a.ic["PatchTST"]["ic"] > 0.5 and a.ic["PatchTST"]["days"] <= 120
    assert a.trading[BUY_AND_HOLD]["days"] == 120  # dates, not windows: one portfolio per date
    assert set(a.summary()) == {"test_ci", "baselines", "comparisons", "trading", "ic"}
