"""OHLCV frames for the feature tests: real MSFT (bokeh-sampledata) and seeded synthetic series."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from bokeh_sampledata import stocks


def msft_frame() -> pl.DataFrame:
    """MSFT daily 2000-03-01 .. 2013-03-01 (3,270 rows), date as pl.Date, prices Float64."""
    d = stocks.MSFT
    return pl.DataFrame(
        {k: d[k] for k in ("date", "open", "high", "low", "close", "volume")}
    ).with_columns(pl.col("date").str.to_date(), pl.col("volume").cast(pl.Float64))


def synthetic_frame(rows: int, seed: int = 0, start: dt.date = dt.date(2001, 1, 1)) -> pl.DataFrame:
    """A weekday random walk with valid OHLC, a few flat days, zero-volume days and holidays.

    Returns about ``rows`` * 36/37 rows.
    """
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.012, rows)))
    open_ = close * np.exp(rng.normal(0, 0.004, rows))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, rows)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, rows)))
    volume = np.round(rng.lognormal(14, 0.4, rows))
    flat = rng.choice(rows, size=max(rows // 100, 1), replace=False)
    open_[flat] = high[flat] = low[flat] = close[flat]
    volume[rng.choice(rows, size=max(rows // 100, 1), replace=False)] = 0.0
    days = pl.date_range(start, start + dt.timedelta(days=rows * 2), eager=True)
    days = days.filter(days.dt.weekday() <= 5).head(rows)
    frame = pl.DataFrame(
        {"date": days, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )
    # Market holidays: drop every 37th weekday so some weeks have fewer than five rows.
    return frame.filter(pl.int_range(pl.len()) % 37 != 5)


@pytest.fixture(scope="session")
def msft() -> pl.DataFrame:
    """The MSFT frame."""
    return msft_frame()


@pytest.fixture(scope="session")
def make_ohlcv():
    """The ``synthetic_frame`` factory."""
    return synthetic_frame


@pytest.fixture(scope="session")
def synthetic() -> pl.DataFrame:
    """A synthetic series of 875 rows (seed 3)."""
    return synthetic_frame(900, seed=3)
