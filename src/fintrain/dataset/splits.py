"""Targets, chronological splits with a purge gap, train-only scaling, and window tensors.

``build_dataset`` turns a feature frame into the three ``WindowSet``s a training run uses.
Splits are by date (for several tickers, the same dates for all of them, so no ticker's test
period precedes another's training period). A sample is the window of ``context_len`` rows
ending at row t; it belongs to the split that holds t, and only if its label rows t+1 .. t+h
and a purge gap of ``gap`` >= h rows after t stay inside that split. The windows of the
validation and test splits may start in the previous split: their inputs are the past, only
labels must not overlap.

``split.data_fraction`` < 1 shortens the training period from its start: of the distinct
training dates only the last ``round(n * fraction)`` are kept (the same last training date), so
training windows, the scaler's rows and the learned baselines see less history, while the
validation and test windows (their dates and labels) are exactly those of the full period.
A training window lies wholly inside the kept period; the rows before it are not used at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from fintrain.config import SplitConfig, TargetConfig
from fintrain.dataset.scaling import Scaler
from fintrain.dataset.targets import NEXT_RETURN, TARGET, TICKER, is_classification, next_return_expr, target_expr
from fintrain.dataset.windows import WindowSet
from fintrain.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Boundaries:
    """The first (kept) and last date of the training period, the last validation date, and the
    purge gap in rows."""

    train_end: dt.date
    val_end: dt.date
    gap: int
    train_start: dt.date | None = None  # None: the training period starts with the data


@dataclass(frozen=True)
class Splits:
    """The three splits of a dataset and the scaler fitted on the training rows.

    Attributes:
        train, val, test: the WindowSets.
        scaler: z-score statistics from the training rows.
        feature_columns: the feature columns, in tensor order.
        target: the TargetConfig the labels follow.
        split: the SplitConfig the splits follow.
        boundaries: the split dates and the purge gap actually used.
    """

    train: WindowSet
    val: WindowSet
    test: WindowSet
    scaler: Scaler
    feature_columns: list[str]
    target: TargetConfig
    split: SplitConfig
    boundaries: Boundaries

    @property
    def n_features(self) -> int:
        """C, feature columns per row."""
        return len(self.feature_columns)

    @property
    def context_len(self) -> int:
        """L, rows per window."""
        return self.split.context_len

    def summary(self) -> dict[str, Any]:
        """Sizes, dates and label statistics of each split (JSON-ready)."""
        out: dict[str, Any] = {
            "task": self.target.task,
            "horizon": self.target.horizon,
            "context_len": self.context_len,
            "n_features": self.n_features,
            "gap": self.boundaries.gap,
            "train_start": self.boundaries.train_start.isoformat() if self.boundaries.train_start else None,
            "train_end": self.boundaries.train_end.isoformat(),
            "val_end": self.boundaries.val_end.isoformat(),
        }
        for name in SPLITS:
            part: WindowSet = getattr(self, name)
            stats: dict[str, Any] = {
                "windows": len(part),
                "first_date": part.dates[0].isoformat(),
                "last_date": part.dates[-1].isoformat(),
            }
            if is_classification(self.target):
                stats["positive_rate"] = part.positive_rate
            else:
                stats.update(part.label_stats())
            out[name] = stats
        return out


def purge_gap(target: TargetConfig, split: SplitConfig) -> int:
    """The gap in rows between splits: ``split.gap``, by default the horizon, never less."""
    if split.gap is None:
        return target.horizon
    if split.gap < target.horizon:
        raise ConfigError(
            f"split.gap={split.gap} is below target.horizon={target.horizon}: a label would use "
            "prices of the next split; raise the gap or leave it unset (default: the horizon)"
        )
    return split.gap


def split_dates(dates: pl.Series, split: SplitConfig) -> tuple[dt.date, dt.date]:
    """The last training and validation dates: given, or the fractions of the distinct dates."""
    if split.train_end is not None and split.val_end is not None:
        return split.train_end, split.val_end
    unique = dates.unique().sort()
    n = unique.len()
    a = round(n * split.train_frac)
    b = round(n * (split.train_frac + split.val_frac))
    if not 0 < a < b < n:
        raise DataError(
            f"{n} dates are too few to split {split.train_frac:.0%}/{split.val_frac:.0%}/"
            f"{1 - split.train_frac - split.val_frac:.0%}"
        )
    return unique[a - 1], unique[b - 1]


def training_start(dates: pl.Series, train_end: dt.date, fraction: float) -> dt.date | None:
    """The first training date kept under ``split.data_fraction``: the last ``round(n * fraction)``
    (at least one) of the n distinct dates up to ``train_end``; None for the whole period."""
    if fraction >= 1.0:
        return None
    kept_dates = dates.filter(dates <= train_end).unique().sort()
    keep = max(1, round(kept_dates.len() * fraction))
    return kept_dates[kept_dates.len() - keep]


def _check_frame(frame: pl.DataFrame, feature_columns: list[str], target: TargetConfig) -> None:
    needed = ["date", "close", *(["high"] if target.task == "threshold" else [])]
    missing = [c for c in [*needed, *feature_columns] if c not in frame.columns]
    if missing:
        raise DataError(
            f"the feature frame has no column(s) {', '.join(missing)}; "
            f"found: {', '.join(frame.columns)}"
        )
    if not feature_columns:
        raise ConfigError("feature_columns is empty: name at least one feature column")
    bad = frame.select(pl.col(feature_columns).is_finite().fill_null(False).not_().any())
    for name in feature_columns:
        if bad[name][0]:
            first = frame.filter(~pl.col(name).is_finite().fill_null(False))["date"][0]
            raise DataError(
                f"feature column {name} has a null, NaN or infinite value on {first}; "
                "rebuild the features (the warm-up rows must be dropped)"
            )


def _sample_masks(frame: pl.DataFrame, target: TargetConfig, split: SplitConfig) -> tuple[
    pl.DataFrame, Boundaries
]:
    """Per row: its label, and whether it ends a train/val/test sample or is a training row."""
    gap = purge_gap(target, split)
    by = TICKER if TICKER in frame.columns else None
    train_end, val_end = split_dates(frame["date"], split)
    train_start = training_start(frame["date"], train_end, split.data_fraction)
    date = pl.col("date")
    # Region -1: training dates cut off by split.data_fraction; they belong to no split.
    region = (
        pl.when(date < (train_start or dt.date.min)).then(-1)
        .when(date <= train_end).then(0).when(date <= val_end).then(1).otherwise(2)
    ).alias("_region")

    def per(e: pl.Expr) -> pl.Expr:
        return e.over(by) if by else e

    keys = [by] if by else []
    pos = per(pl.int_range(pl.len())).alias("_pos")
    masks = (
        frame.lazy()
        .select(date, *([pl.col(by)] if by else []), target_expr(target, by), next_return_expr(by), region, pos)
        # The last row of each row's own region (within its ticker).
        .with_columns(pl.col("_pos").max().over([*keys, "_region"]).alias("_region_last"),
                      pl.col("_pos").min().over([*keys, "_region"]).alias("_region_first"))
        .with_columns(
            sample=(pl.col("_pos") >= split.context_len - 1)
            & pl.col(TARGET).is_not_null()
            & (pl.col("_region") >= 0)
            # A training window starts inside the (kept) training period.
            & ((pl.col("_region") != 0) | (pl.col("_pos") - (split.context_len - 1) >= pl.col("_region_first")))
            & ((pl.col("_region") == 2) | (pl.col("_pos") + gap <= pl.col("_region_last"))),
            train_row=(pl.col("_region") == 0) & (pl.col("_pos") + gap <= pl.col("_region_last")),
        )
        .collect()
    )
    return masks, Boundaries(train_end, val_end, gap, train_start)


def build_dataset(
    frame: pl.DataFrame,
    target: TargetConfig,
    split: SplitConfig,
    *,
    feature_columns: list[str],
    device: str | torch.device = "cpu",
) -> Splits:
    """Labels, chronological splits, train-only scaling and window tensors for a feature frame.

    Args:
        frame: a feature frame (``build_features`` / ``ensure_features`` output): ``date``,
            ``close`` (and ``high`` for the threshold task), the feature columns, optionally
            ``ticker``; sorted by (ticker,) date, as those functions return it.
        target: the label definition.
        split: context length, fractions or dates, purge gap.
        feature_columns: the columns the model sees, in order.
        device: where the tensors go (float32 everywhere; MPS has no float64).

    Returns:
        Splits with train, val and test WindowSets and the fitted scaler.

    Raises:
        ConfigError: a gap below the horizon, or no feature columns.
        DataError: missing or non-finite columns, or a split left without windows.
    """
    device = torch.device(device)
    by = TICKER if TICKER in frame.columns else None
    keys = [by, "date"] if by else ["date"]
    # Windows must not span two tickers or run backwards in time.
    if by:
        frame = frame.sort(keys, maintain_order=True)
    elif not frame["date"].is_sorted():
        frame = frame.sort("date", maintain_order=True)
    _check_frame(frame, feature_columns, target)
    masks, bounds = _sample_masks(frame, target, split)

    values = frame.select(feature_columns).to_numpy().astype(np.float64, copy=False)
    train_rows = masks["train_row"].to_numpy()
    if not train_rows.any():
        raise DataError("no training rows: the training period is shorter than the purge gap")
    scaler = Scaler.fit(values[train_rows], feature_columns)
    features = torch.from_numpy(scaler.transform_numpy(values)).to(device)  # (T, C)
    labels_np = masks[TARGET].fill_null(0.0).to_numpy().astype(np.float32)
    labels = torch.from_numpy(labels_np).to(device)  # (T,)

    next_returns = masks[NEXT_RETURN].fill_null(float("nan")).to_numpy().astype(np.float64)
    sample = masks["sample"].to_numpy()
    region = masks["_region"].to_numpy()
    sets: dict[str, WindowSet] = {}
    for code, name in enumerate(SPLITS):
        ends_np = np.flatnonzero(sample & (region == code))
        if ends_np.size == 0:
            cut = (f", data_fraction={split.data_fraction:g} (training from {bounds.train_start})"
                   if bounds.train_start else "")
            raise DataError(
                f"the {name} split has no windows: {frame.height} rows, context_len="
                f"{split.context_len}, gap={bounds.gap}, train_end={bounds.train_end}, "
                f"val_end={bounds.val_end}{cut}; use more data, a shorter context, a larger data "
                "fraction or other split fractions/dates"
            )
        ends = torch.from_numpy(ends_np).to(device)
        sets[name] = WindowSet(
            features,
            labels,
            ends,
            split.context_len,
            dates=frame["date"].gather(ends_np),
            tickers=frame[by].gather(ends_np) if by else None,
            next_returns=next_returns[ends_np],
        )
    return Splits(
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        scaler=scaler,
        feature_columns=list(feature_columns),
        target=target,
        split=split,
        boundaries=bounds,
    )
