"""Chronological splits with a purge gap, train-only scaling, and what the windows contain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fintrain.config import SplitConfig, TargetConfig
from fintrain.dataset import Scaler, build_dataset, target_expr
from fintrain.errors import ConfigError, DataError

FEATURES = ["f0", "f1", "f2"]


def build(frame: pl.DataFrame, target: TargetConfig | None = None, **split) -> object:
    split.setdefault("context_len", 20)
    return build_dataset(
        frame, target or TargetConfig(), SplitConfig(**split), feature_columns=FEATURES
    )


def ends(ds, name: str) -> np.ndarray:
    return getattr(ds, name).ends.cpu().numpy()


@settings(max_examples=25)
@given(
    horizon=st.integers(1, 8),
    extra_gap=st.integers(0, 5),
    context_len=st.integers(2, 40),
    train_frac=st.floats(0.4, 0.7),
)
def test_no_label_crosses_a_split_boundary_and_the_gap_is_kept(
    frame: pl.DataFrame, horizon: int, extra_gap: int, context_len: int, train_frac: float
) -> None:
    gap = horizon + extra_gap
    ds = build(
        frame,
        TargetConfig(task="direction", horizon=horizon),
        context_len=context_len,
        train_frac=train_frac,
        val_frac=0.15,
        gap=gap,
    )
    dates = frame["date"]
    first_val = int(np.flatnonzero((dates > ds.boundaries.train_end).to_numpy())[0])
    first_test = int(np.flatnonzero((dates > ds.boundaries.val_end).to_numpy())[0])
    train, val, test = ends(ds, "train"), ends(ds, "val"), ends(ds, "test")
    # Each sample's label rows t+1..t+h, and the gap after t, stay inside its own split.
    assert train.max() + gap <= first_val - 1
    assert val.min() >= first_val and val.max() + gap <= first_test - 1
    assert test.min() >= first_test and test.max() + horizon <= frame.height - 1
    # Only the purge gap is lost at each boundary.
    assert train.max() + gap == first_val - 1
    assert val.max() + gap == first_test - 1
    # Every window fits in the frame; windows are chronological and disjoint in their ends.
    assert train.min() == context_len - 1
    assert np.all(np.diff(np.concatenate([train, val, test])) > 0)


def test_default_split_is_70_15_15_of_the_dates_with_gap_equal_to_horizon(frame: pl.DataFrame) -> None:
    ds = build(frame, TargetConfig(horizon=3))
    assert ds.boundaries.gap == 3
    assert ds.boundaries.train_end == frame["date"][279]  # 70% of 400 dates
    assert ds.boundaries.val_end == frame["date"][339]  # 85%
    assert len(ds.train) == 280 - 3 - 19
    assert len(ds.val) == 60 - 3
    assert len(ds.test) == 60 - 3  # the last h rows have no label


def test_split_by_dates(frame: pl.DataFrame) -> None:
    ds = build(frame, train_end=dt.date(2010, 9, 30), val_end=dt.date(2011, 1, 31))
    assert ds.train.dates.max() < dt.date(2010, 9, 30)
    assert dt.date(2010, 9, 30) < ds.val.dates.min() and ds.val.dates.max() < dt.date(2011, 1, 31)
    assert ds.test.dates.min() > dt.date(2011, 1, 31)


def test_a_gap_below_the_horizon_is_refused(frame: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"split.gap=2 is below target.horizon=5"):
        build(frame, TargetConfig(horizon=5), gap=2)


def test_a_split_without_windows_is_a_clear_error(make_frame) -> None:
    with pytest.raises(DataError, match="the val split has no windows"):
        build(make_frame(120), context_len=20, train_frac=0.8, val_frac=0.05, gap=10)


def test_scaler_uses_training_rows_only(frame: pl.DataFrame) -> None:
    ds = build(frame)
    last_train_row = int(ends(ds, "train").max())
    # Change everything after the last training window: val, test and the gap rows.
    later = pl.int_range(pl.len()) > last_train_row
    changed = frame.with_columns(
        pl.when(later).then(pl.col(c) * 100 + 7).otherwise(pl.col(c)).alias(c) for c in FEATURES
    )
    again = build(changed)
    assert torch.equal(again.scaler.mean, ds.scaler.mean)
    assert torch.equal(again.scaler.std, ds.scaler.std)
    # ... while a change inside the training rows moves them.
    earlier = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == last_train_row).then(pl.col("f0") + 50).otherwise(pl.col("f0")).alias("f0")
    )
    assert not torch.equal(build(earlier).scaler.mean, ds.scaler.mean)
    expected = frame.head(last_train_row + 1).select(FEATURES).to_numpy()
    np.testing.assert_allclose(ds.scaler.mean.numpy(), expected.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(ds.scaler.std.numpy(), expected.std(axis=0), rtol=1e-6)


def test_windows_hold_the_scaled_rows_ending_at_t_and_the_label_of_t(frame: pl.DataFrame) -> None:
    target = TargetConfig(task="return", horizon=2)
    ds = build(frame, target, context_len=15)
    values = frame.select(FEATURES).to_numpy()
    mean, std = values[:int(ends(ds, "train").max()) + 1].mean(0), values[:int(ends(ds, "train").max()) + 1].std(0)
    labels = frame.select(target_expr(target))["target"].to_numpy()
    for name in ("train", "val", "test"):
        part = getattr(ds, name)
        idx = torch.tensor([0, len(part) // 2, len(part) - 1])
        x, y = part.gather(idx)
        assert x.shape == (3, 15, 3) and x.dtype == torch.float32 and y.dtype == torch.float32
        for row, i in enumerate(idx.tolist()):
            t = int(part.ends[i])
            np.testing.assert_allclose(x[row].numpy(), (values[t - 14 : t + 1] - mean) / std, rtol=1e-5, atol=1e-5)
            assert y[row].item() == pytest.approx(labels[t], rel=1e-6)
            assert part.dates[i] == frame["date"][t]
        torch.testing.assert_close(part.last_row_features()[idx], x[:, -1, :])
        assert torch.equal(part.windows[part.ends[idx] - 14], x)


def test_scaled_training_rows_have_zero_mean_and_unit_std(frame: pl.DataFrame) -> None:
    ds = build(frame)
    rows = ds.train.last_row_features()
    assert rows.mean(0).abs().max() < 0.2
    assert (rows.std(0) - 1).abs().max() < 0.2


def test_batch_order_depends_on_seed_and_epoch_only(frame: pl.DataFrame) -> None:
    train = build(frame).train
    torch.manual_seed(1)
    first = train.batch_indices(32, shuffle=True, seed=7, epoch=3)
    torch.manual_seed(999)
    torch.rand(10)
    second = train.batch_indices(32, shuffle=True, seed=7, epoch=3)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    other_epoch = train.batch_indices(32, shuffle=True, seed=7, epoch=4)
    assert not torch.equal(torch.cat(first), torch.cat(other_epoch))
    # Every sample once per epoch, in batches of 32 and a remainder.
    assert sorted(torch.cat(first).tolist()) == list(range(len(train)))
    assert [len(b) for b in first] == [32] * (len(train) // 32) + [len(train) % 32]
    assert all(len(b) == 32 for b in train.batch_indices(32, True, 7, 3, drop_last=True))
    plain = train.batch_indices(32)
    assert torch.equal(torch.cat(plain), torch.arange(len(train)))


def test_batches_yield_the_gather_of_each_batch_index(frame: pl.DataFrame) -> None:
    val = build(frame).val
    for (x, y), idx in zip(val.batches(16, True, 1, 0), val.batch_indices(16, True, 1, 0), strict=True):
        x2, y2 = val.gather(idx)
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(torch.cat([y for _, y in val.batches(16)]), val.labels)


def test_positive_rate_and_summary(frame: pl.DataFrame) -> None:
    ds = build(frame)
    assert ds.train.positive_rate == pytest.approx(float(ds.train.labels.mean()))
    summary = ds.summary()
    assert summary["train"]["windows"] == len(ds.train)
    assert summary["test"]["positive_rate"] == pytest.approx(ds.test.positive_rate)
    assert summary["train_end"] == ds.boundaries.train_end.isoformat()
    assert ds.n_features == 3 and ds.feature_columns == FEATURES


def test_many_tickers_split_on_the_same_dates_and_windows_stay_in_one_ticker(make_frame) -> None:
    a = make_frame(300, seed=1).with_columns(ticker=pl.lit("A"))
    b = make_frame(200, seed=2, start=dt.date(2010, 6, 1)).with_columns(ticker=pl.lit("B"))
    ds = build(pl.concat([b, a]), context_len=10)
    assert set(ds.train.tickers.unique()) == {"A", "B"}
    for name in ("train", "val", "test"):
        part = getattr(ds, name)
        tickers = part.tickers.to_numpy()
        for ticker in ("A", "B"):
            mine = part.dates.filter(pl.Series(tickers == ticker))
            if name == "train":
                assert mine.max() <= ds.boundaries.train_end
            elif name == "test":
                assert mine.min() > ds.boundaries.val_end
    # Sorted by (ticker, date): A's rows come first, so B's first window starts at row 300.
    b_ends = ds.train.ends[torch.from_numpy(ds.train.tickers.to_numpy() == "B")]
    assert int(b_ends.min()) == 300 + 9


def test_non_finite_features_are_refused(frame: pl.DataFrame) -> None:
    broken = frame.with_columns(pl.when(pl.int_range(pl.len()) == 50).then(float("nan")).otherwise(pl.col("f1")).alias("f1"))
    with pytest.raises(DataError, match="f1 has a null, NaN or infinite value"):
        build(broken)


def test_missing_feature_column_is_named(frame: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="no column.*f2"):
        build(frame.drop("f2"))


def test_scaler_state_round_trips_through_a_weights_only_checkpoint(frame: pl.DataFrame, tmp_path: Path) -> None:
    scaler = build(frame).scaler
    torch.save({"scaler": scaler.state_dict()}, tmp_path / "ckpt.pt")
    loaded = Scaler.from_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["scaler"])
    assert torch.equal(loaded.mean, scaler.mean) and torch.equal(loaded.std, scaler.std)
    assert loaded.columns == FEATURES
    x = torch.randn(4, 3)
    torch.testing.assert_close(loaded.transform(x), (x - scaler.mean) / scaler.std)


def test_a_constant_training_feature_is_left_unscaled() -> None:
    scaler = Scaler.fit(np.array([[1.0, 2.0], [1.0, 4.0]]), ["flat", "moving"])
    assert scaler.std.tolist() == [1.0, 1.0]
    assert scaler.mean.tolist() == [1.0, 3.0]


@pytest.mark.parametrize("task", ["threshold", "return"])
def test_label_statistics_of_device_windows_are_copied_to_the_host_before_float64(
    frame: pl.DataFrame, strict_device, task: str
) -> None:
    # On MPS a float64 made straight from the device labels raises (or, in torch 2.14, reads 0).
    host = build(frame, TargetConfig(task=task))
    with strict_device() as mode:
        ds = build_dataset(frame, TargetConfig(task=task), SplitConfig(context_len=20),
                           feature_columns=FEATURES, device=torch.device("cpu", 0))
        assert mode.is_device(ds.train.labels)
        rate = ds.train.positive_rate
        stats = ds.test.label_stats()
        summary = ds.summary()
    assert not mode.refused
    assert rate == pytest.approx(host.train.positive_rate) and 0 < rate
    assert stats == pytest.approx(host.test.label_stats())
    assert summary == host.summary()


def test_each_window_carries_the_return_from_close_t_to_close_t_plus_1(make_frame) -> None:
    # Two tickers given out of order: B's frame comes first, the dataset sorts A first.
    a = make_frame(300, seed=1).with_columns(ticker=pl.lit("A"))
    b = make_frame(250, seed=2).with_columns(ticker=pl.lit("B"))
    ds = build(pl.concat([b, a]), TargetConfig(task="direction", horizon=3))
    for part in (ds.train, ds.val, ds.test):
        for ticker, source in (("A", a), ("B", b)):
            mine = part.tickers.to_numpy() == ticker
            close = source["close"].to_numpy()
            rows = source["date"].search_sorted(part.dates.filter(pl.Series(mine)))
            np.testing.assert_allclose(part.next_returns[mine], close[rows + 1] / close[rows] - 1)


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_data_fraction_cuts_the_training_period_from_its_start_and_keeps_val_and_test(
    frame: pl.DataFrame, fraction: float
) -> None:
    full = build(frame, context_len=10)
    cut = build(frame, context_len=10, data_fraction=fraction)
    dates = frame["date"]
    # Worked example: 400 dates, 70% = 280 training dates; the last round(280 * f) are kept.
    assert full.boundaries.train_end == cut.boundaries.train_end == dates[279]
    kept = round(280 * fraction)
    assert cut.boundaries.train_start == dates[280 - kept] and full.boundaries.train_start is None
    assert cut.summary()["train_start"] == dates[280 - kept].isoformat()
    # Validation and test: the same windows, dates and labels.
    for name in ("val", "test"):
        assert torch.equal(getattr(cut, name).ends, getattr(full, name).ends)
        assert getattr(cut, name).dates.equals(getattr(full, name).dates)
        assert torch.equal(getattr(cut, name).labels, getattr(full, name).labels)
    # Training: the same last window; the first one starts at the cut (no row before it is read).
    train_ends = ends(cut, "train")
    assert train_ends.max() == ends(full, "train").max()
    assert train_ends.min() - 9 == 280 - kept
    assert len(cut.train) == len(full.train) - (280 - kept)
    # The scaler sees the kept training rows only.
    rows = frame.slice(280 - kept, int(train_ends.max()) - (280 - kept) + 1).select(FEATURES).to_numpy()
    np.testing.assert_allclose(cut.scaler.mean.numpy(), rows.mean(axis=0), rtol=1e-5)


def test_data_fraction_is_checked_and_too_little_training_data_says_so(make_frame) -> None:
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="data_fraction"):
            SplitConfig(data_fraction=bad)
    with pytest.raises(DataError, match=r"the train split has no windows.*data_fraction=0.01"):
        build(make_frame(400), context_len=20, data_fraction=0.01)
