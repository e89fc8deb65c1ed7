from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fintrain.display import (
    SPARK_BLOCKS,
    epoch_label,
    format_bytes,
    format_duration,
    format_value,
    sparkline,
)


def test_sparkline_shows_a_flat_loss_mid_height_and_a_diverged_one_as_a_gap():
    assert sparkline([0.5, 0.5, 0.5]) == "▄▄▄"
    assert sparkline([1.0, math.nan, 0.0]) == "█ ▁"
    assert sparkline([math.inf]) == " "
    assert sparkline([]) == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "--"), (-1, "--"), (math.inf, "--"), (0.4, "0s"), (42, "42s"), (187, "3m 07s"), (3720, "1h 02m")],
)
def test_durations_read_like_a_clock(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("count", "text"),
    [(None, "n/a"), (512, "512 B"), (2048, "2.00 KiB"), (45 * 1024**2, "45.0 MiB"),
     (812 * 1024**2, "812 MiB"), (3 * 1024**3 // 2, "1.50 GiB"), (2048 * 1024**3, "2048 GiB")],
)
def test_memory_sizes_use_binary_units(count, text):
    assert format_bytes(count) == text


def test_values_and_epochs():
    assert format_value(0.123456) == "0.1235"
    assert format_value(2.5e-5) == "2.500e-05"
    assert format_value(None) == "-"
    assert format_value(math.nan) == "nan"
    assert epoch_label(1) == "1" and epoch_label(None) == "-" and epoch_label(True) == "-"


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=60))
def test_sparkline_keeps_one_block_per_value_and_spans_lowest_to_highest(values):
    line = sparkline(values)
    assert len(line) == len(values)
    if max(values) > min(values):
        assert line[values.index(min(values))] == SPARK_BLOCKS[0]
        assert line[values.index(max(values))] == SPARK_BLOCKS[-1]
        # Higher values never get lower blocks.
        ranked = sorted(zip(values, line, strict=True))
        blocks = [SPARK_BLOCKS.index(c) for _, c in ranked]
        assert blocks == sorted(blocks)


def test_metrics_are_shown_once_at_a_readable_precision():
    from fintrain.display import format_metric, shown_metrics, val_metrics

    assert format_metric("pos_rate", 0.0009921) == "0.10%" and format_metric("pos_rate", 0.25) == "25.00%"
    assert format_metric("auc", 0.56123) == "0.5612" and format_metric("pos_rate", None) == "-"
    test = {"loss": 0.6931472, "auc": 0.5, "log_loss": 0.6931471805599453, "pos_rate": 0.2}
    assert [name for name, _ in shown_metrics(test)] == ["auc", "log_loss", "pos_rate"]
    assert "loss" in dict(shown_metrics({**test, "loss": 0.71}))  # a weighted BCE is another value
    assert [name for name, _ in shown_metrics({"loss": 1e-4, "mse": 1e-4, "mae": 0.01})] == ["mse", "mae"]
    record = {"val/loss": 0.62, "val/auc": 0.55, "val/log_loss": 0.62, "val/pos_rate": 0.3}
    assert [name for name, _ in val_metrics(record)] == ["auc", "pos_rate"]  # val loss sits beside train loss
