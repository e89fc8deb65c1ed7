"""Real recorded OHLCV for the data tests: bokeh-sampledata's MSFT (public domain)."""

from __future__ import annotations

import polars as pl
import pytest
from bokeh_sampledata import stocks


@pytest.fixture(scope="session")
def msft() -> pl.DataFrame:
    """MSFT daily 2000-03-01 .. 2013-03-01 as bokeh-sampledata ships it (3,270 rows)."""
    d = stocks.MSFT
    return pl.DataFrame({k: d[k] for k in ("date", "open", "high", "low", "close", "volume", "adj_close")})


@pytest.fixture
def msft_300(msft: pl.DataFrame) -> pl.DataFrame:
    """The first 300 rows: enough for validation's 250-row minimum."""
    return msft.head(300)
