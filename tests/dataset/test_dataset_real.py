"""From real MSFT OHLCV (bokeh-sampledata) through a20 features to window tensors."""

from __future__ import annotations

import polars as pl
import torch
from bokeh_sampledata import stocks

from fintrain.config import SplitConfig, TargetConfig
from fintrain.dataset import build_dataset
from fintrain.features import build_features, feature_names


def test_msft_a20_features_become_finite_float32_windows() -> None:
    raw = pl.DataFrame(
        {k: stocks.MSFT[k] for k in ("date", "open", "high", "low", "close", "volume")}
    ).with_columns(pl.col("date").str.to_date(), pl.col("volume").cast(pl.Float64))
    features = build_features(raw, "a20")
    ds = build_dataset(
        features, TargetConfig(), SplitConfig(), feature_columns=feature_names("a20")
    )
    assert ds.n_features == 20
    assert len(ds.train) + len(ds.val) + len(ds.test) == features.height - 59 - 3 * 1
    x, y = next(ds.train.batches(64, shuffle=True, seed=0, epoch=0))
    assert x.shape == (64, 60, 20) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and set(y.unique().tolist()) <= {0.0, 1.0}
    # The threshold task's positives are a minority on MSFT, but not absent.
    assert 0.2 < ds.train.positive_rate < 0.6
    assert ds.train.dates.max() < ds.val.dates.min() < ds.val.dates.max() < ds.test.dates.min()
