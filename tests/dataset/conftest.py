"""Small feature frames for the dataset tests (a few hundred rows, seeded)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

FEATURES = ["f0", "f1", "f2"]


def feature_frame(rows: int = 400, seed: int = 0, start: dt.date = dt.date(2010, 1, 4)) -> pl.DataFrame:
    """date, high, close and three features with different means and scales, on weekdays."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    high = close * np.exp(np.abs(rng.normal(0, 0.01, rows)))
    days = pl.date_range(start, start + dt.timedelta(days=rows * 2), eager=True)
    days = days.filter(days.dt.weekday() <= 5).head(rows)
    return pl.DataFrame(
        {
            "date": days,
            "high": high,
            "close": close,
            "f0": rng.normal(5, 2, rows),
            "f1": rng.normal(-1, 0.1, rows),
            "f2": np.linspace(0, 1, rows),
        }
    )


@pytest.fixture
def make_frame():
    """The ``feature_frame`` factory."""
    return feature_frame


@pytest.fixture(scope="session")
def frame() -> pl.DataFrame:
    """400 rows, seed 0."""
    return feature_frame()
