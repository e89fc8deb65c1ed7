import datetime as dt

import polars as pl
import pytest

from fintrain.data.validate import DataValidationError, map_columns, parse_dates, validate_ohlcv


def test_column_spellings_are_recognised_case_insensitively():
    found = map_columns(["Timestamp", "OPEN", "High", "low", "Close", "Adj. Close", "Vol", "Symbol"])
    assert found == {
        "date": "Timestamp", "open": "OPEN", "high": "High", "low": "low",
        "close": "Close", "adj_close": "Adj. Close", "volume": "Vol",
    }


@pytest.mark.parametrize(
    "values",
    [
        ["2020-01-02", "2020-01-03"],
        ["01/02/2020", "01/03/2020"],
        ["2020-01-02 00:00:00-05:00", "2020-01-03 00:00:00-05:00"],
        ["20200102", "20200103"],
    ],
)
def test_dates_parse_in_common_formats(values):
    parsed, bad = parse_dates(pl.Series("d", values))
    assert bad == []
    assert parsed.to_list() == [dt.date(2020, 1, 2), dt.date(2020, 1, 3)]


def test_adjusted_close_rescales_ohlc(msft_300):
    clean = validate_ohlcv(msft_300, "msft")
    assert clean.adjusted
    ratio = (msft_300["adj_close"] / msft_300["close"]).to_numpy()
    assert clean.frame["close"].to_numpy() == pytest.approx(msft_300["adj_close"].to_numpy())
    assert clean.frame["high"].to_numpy() == pytest.approx(msft_300["high"].to_numpy() * ratio)
    assert clean.frame.columns == ["date", "open", "high", "low", "close", "volume"]


def test_unsorted_input_is_sorted(msft_300):
    clean = validate_ohlcv(msft_300.reverse(), "msft")
    assert clean.frame["date"].is_sorted()


def test_every_problem_is_reported_at_once(msft_300):
    bad = msft_300.with_row_index("i").with_columns(
        pl.when(pl.col("i") == 3).then(None).otherwise(pl.col("open")).alias("open"),
        pl.when(pl.col("i") == 5).then(-1.0).otherwise(pl.col("close")).alias("close"),
        pl.when(pl.col("i") == 7).then(-5.0).otherwise(pl.col("volume")).alias("volume"),
        pl.when(pl.col("i") == 9).then(pl.lit("2000-03-02")).otherwise(pl.col("date")).alias("date"),
    ).drop("i")
    with pytest.raises(DataValidationError) as info:
        validate_ohlcv(bad, "bad.csv")
    text = str(info.value)
    assert "missing open values in rows 4" in text
    assert "prices <= 0 in rows 6" in text
    assert "negative volume in rows 8" in text
    assert "duplicate dates 2000-03-02" in text
    assert len(info.value.problems) >= 4


def test_high_below_close_is_counted_with_first_rows(msft_300):
    bad = msft_300.with_row_index("i").with_columns(
        pl.when(pl.col("i").is_in([10, 20])).then(pl.col("close") * 0.5).otherwise(pl.col("high")).alias("high")
    ).drop("i")
    with pytest.raises(DataValidationError, match=r"2 rows with high below max\(open, close\), first rows 11, 21"):
        validate_ohlcv(bad, "x")


def test_low_above_open_or_close_is_counted_with_first_rows(msft_300):
    bottom = pl.min_horizontal("open", "close")
    bad = msft_300.with_row_index("i").with_columns(
        pl.when(pl.col("i").is_in([4, 30, 31])).then(bottom * 1.01)
        .when(pl.col("i") == 50).then(bottom * 1.0005)  # within the rounding tolerance: accepted
        .otherwise(pl.col("low")).alias("low")
    ).drop("i")
    with pytest.raises(DataValidationError) as info:
        validate_ohlcv(bad, "x")
    assert info.value.problems == ["3 rows with low above min(open, close), first rows 5, 31, 32"]


def test_too_few_rows(msft_300):
    with pytest.raises(DataValidationError, match="only 100 rows; at least 250"):
        validate_ohlcv(msft_300.head(100), "x")


def test_missing_columns_listed_with_those_found():
    frame = pl.DataFrame({"Date": ["2020-01-02"], "Price": [1.0], "Vol": [3.0]})
    with pytest.raises(DataValidationError) as info:
        validate_ohlcv(frame, "x.csv")
    assert "missing columns open, high, low, close (found: Date, Price, Vol)" in str(info.value)
