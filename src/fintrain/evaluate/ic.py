"""Cross-sectional information coefficients of a score against the next day's return.

For each date, IC is the Pearson correlation across tickers between the scores of that date and
the returns from close t to close t+1; Rank IC uses Spearman's (Pearson of average ranks) instead.
ICIR is mean / std of the daily values (std with ddof=1, as Qlib's tables report it). Dates
with fewer than two tickers, or where scores or returns do not vary across tickers, have no
correlation and are left out. Reported only for universes of ``MIN_TICKERS`` or more.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

MIN_TICKERS = 5


def daily_ic(dates: np.ndarray, scores: np.ndarray, next_return: np.ndarray) -> pl.DataFrame:
    """One row per date: ``date``, ``ic`` (Pearson) and ``rank_ic`` (Spearman); null where undefined."""
    frame = pl.DataFrame({"date": dates, "score": np.asarray(scores, dtype=np.float64),
                          "ret": np.asarray(next_return, dtype=np.float64)})
    return (
        frame.lazy()
        .with_columns(
            pl.col("score").rank("average").over("date").alias("score_rank"),
            pl.col("ret").rank("average").over("date").alias("ret_rank"),
        )
        .group_by("date")
        .agg(
            pl.len().alias("tickers"),
            pl.corr("score", "ret").alias("ic"),
            pl.corr("score_rank", "ret_rank").alias("rank_ic"),
        )
        .with_columns(pl.when(pl.col("tickers") >= 2).then(pl.col(c)).fill_nan(None).alias(c) for c in ("ic", "rank_ic"))
        .sort("date")
        .collect()
    )


def _summary(values: pl.Series) -> tuple[float, float, float]:
    v = values.drop_nulls().to_numpy().astype(np.float64)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if v.size > 1 else math.nan
    return mean, std, mean / std if std and std > 0 else math.nan


def ic_summary(dates: np.ndarray, scores: np.ndarray, next_return: np.ndarray) -> dict[str, float]:
    """Mean, std and IR of the daily IC and Rank IC, and the number of dates that had them."""
    daily = daily_ic(dates, scores, next_return)
    ic_mean, ic_std, icir = _summary(daily["ic"])
    rank_mean, rank_std, rank_icir = _summary(daily["rank_ic"])
    return {
        "ic": ic_mean, "ic_std": ic_std, "icir": icir,
        "rank_ic": rank_mean, "rank_ic_std": rank_std, "rank_icir": rank_icir,
        "days": int(daily["ic"].drop_nulls().len()),
    }
