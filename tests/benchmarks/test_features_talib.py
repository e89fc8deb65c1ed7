"""benchmarks/features.py: the TA-Lib side computes the same a20 frame as fintrain's build, so
the two times it prints compare the same work (skipped without TA-Lib, the ``bench`` extra)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import polars as pl
import pytest

from fintrain.features import build_features, feature_names, tier_warmup

talib = pytest.importorskip("talib")

_path = Path(__file__).resolve().parents[2] / "benchmarks" / "features.py"
_spec = importlib.util.spec_from_file_location("features_benchmark", _path)
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench
_spec.loader.exec_module(bench)


def test_talib_side_builds_fintrains_a20_frame() -> None:
    universe = bench.generated_ohlcv(3, rows=2_000, seed=5)
    ours = build_features(universe, "a20")
    theirs = bench.talib_a20(talib, universe, tier_warmup("a20"))
    assert theirs.columns == ours.columns
    assert theirs.select("ticker", "date", *bench.OHLCV).equals(ours.select("ticker", "date", *bench.OHLCV))
    # Past the seeds' influence (TA-Lib seeds its averages with an SMA, Polars with the first
    # value) every feature agrees, the weekly ones included (200 weeks in: 1e-8 of an RSI).
    late = pl.int_range(pl.len()).over("ticker") >= 1_000
    a, b = ours.filter(late), theirs.filter(late)
    for name in feature_names("a20"):
        assert (a[name] - b[name]).abs().max() < 1e-6, name
