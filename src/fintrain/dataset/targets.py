"""Targets: what a window ending at row t is labelled with, from rows t+1 .. t+h only."""

from __future__ import annotations

import polars as pl

from fintrain.config import TargetConfig

TARGET = "target"
TICKER = "ticker"
NEXT_RETURN = "next_return"


def target_expr(target: TargetConfig, by: str | None = None) -> pl.Expr:
    """The label of each row as a Float64 expression named ``target``; null where t+h is past
    the end of the series (of its ticker, when ``by`` names the ticker column).

    - threshold: 1.0 if the highest high over t+1..t+h is >= close_t x (1 + threshold), else 0.0
    - direction: 1.0 if close_{t+h} > close_t, else 0.0
    - return: log(close_{t+h} / close_t)
    """
    h = target.horizon
    close = pl.col("close")
    future_close = close.shift(-h)
    if target.task == "threshold":
        # rolling_max at row t+h covers rows t+1..t+h; shifting it back by h lines it up with t.
        future_high = pl.col("high").rolling_max(h).shift(-h)
        label = (future_high >= close * (1.0 + target.threshold)).cast(pl.Float64)
    elif target.task == "direction":
        label = (future_close > close).cast(pl.Float64)
    else:
        label = (future_close / close).log()
    label = label.over(by) if by else label
    return label.alias(TARGET)


def is_classification(target: TargetConfig) -> bool:
    """Whether the task's labels are 0/1 (threshold, direction) rather than a real number."""
    return target.task in ("threshold", "direction")


def next_return_expr(by: str | None = None) -> pl.Expr:
    """The simple return from close t to close t+1 (what a position held at close t earns), as
    ``next_return``; null on a series' last row. Never a model input: the trading view's."""
    ret = pl.col("close").shift(-1) / pl.col("close") - 1.0
    return (ret.over(by) if by else ret).alias(NEXT_RETURN)
