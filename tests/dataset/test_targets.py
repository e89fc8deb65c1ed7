"""Targets: the three tasks by hand, and labels that never read past t+h."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fintrain.config import TargetConfig
from fintrain.dataset import TARGET, target_expr

HAND = pl.DataFrame(
    {
        "close": [100.0, 101.0, 100.5, 103.0, 102.0],
        "high": [100.5, 101.2, 101.6, 103.5, 102.1],
    }
)


def labels(frame: pl.DataFrame, **target) -> list[float | None]:
    return frame.select(target_expr(TargetConfig(**target)))[TARGET].to_list()


def test_threshold_task_by_hand() -> None:
    # Row 0: next high 101.2 >= 101.0 -> 1; row 1: 101.6 < 102.01 -> 0; row 2: 103.5 >= 101.505.
    assert labels(HAND, task="threshold", horizon=1, threshold=0.01) == [1.0, 0.0, 1.0, 0.0, None]
    # h=2 takes the highest high of the next two days.
    assert labels(HAND, task="threshold", horizon=2, threshold=0.02) == [0.0, 1.0, 1.0, None, None]


def test_direction_task_by_hand() -> None:
    assert labels(HAND, task="direction", horizon=1) == [1.0, 0.0, 1.0, 0.0, None]
    assert labels(HAND, task="direction", horizon=3) == [1.0, 1.0, None, None, None]


def test_return_task_by_hand() -> None:
    got = labels(HAND, task="return", horizon=2)
    assert got[0] == pytest.approx(math.log(100.5 / 100.0))
    assert got[2] == pytest.approx(math.log(102.0 / 100.5))
    assert got[3:] == [None, None]


def test_labels_do_not_cross_tickers() -> None:
    two = pl.concat([HAND.with_columns(ticker=pl.lit("A")), HAND.with_columns(ticker=pl.lit("B"))])
    got = two.select(target_expr(TargetConfig(task="direction", horizon=1), by="ticker"))[TARGET]
    assert got.to_list() == [1.0, 0.0, 1.0, 0.0, None] * 2


@settings(max_examples=40)
@given(
    task=st.sampled_from(["threshold", "direction", "return"]),
    horizon=st.integers(1, 10),
    t=st.integers(0, 59),
)
def test_a_label_reads_rows_t_plus_1_to_t_plus_h_only(task: str, horizon: int, t: int) -> None:
    rng = np.random.default_rng(t)
    close = 50 + np.cumsum(rng.normal(0, 1, 60))
    frame = pl.DataFrame({"close": close, "high": close + rng.uniform(0, 2, 60)})
    target = TargetConfig(task=task, horizon=horizon)
    before = frame.select(target_expr(target))[TARGET][t]
    # Scramble every row outside t .. t+h: the label of row t must not change.
    outside = (pl.int_range(pl.len()) < t) | (pl.int_range(pl.len()) > t + horizon)
    scrambled = frame.with_columns(
        pl.when(outside).then(pl.col(c) * 7 + 3).otherwise(pl.col(c)).alias(c) for c in ("close", "high")
    )
    after = scrambled.select(target_expr(target))[TARGET][t]
    assert after == before
    assert (before is None) == (t + horizon >= 60)
