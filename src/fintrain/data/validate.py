"""OHLCV validation: recognise a vendor's columns, check every rule, report every problem.

Nothing is written until a frame passes; the error lists all the problems found, not just the
first, so a user can fix a file in one go.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

from fintrain.errors import DataValidationError

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = ("date", *PRICE_COLUMNS, "volume")
# Relative slack for high >= max(open, close) and low <= min(open, close): vendors round
# adjusted prices independently, so an exact comparison rejects real files.
HIGH_LOW_TOLERANCE = 1e-3
SHOW_AT_MOST = 5
# Daily market data before this date is a unit or parsing mistake (epoch 0 read as days, say).
EARLIEST_DATE = dt.date(1900, 1, 1)
# "1234,56" or "1.234,56": a number written with a decimal comma.
DECIMAL_COMMA = re.compile(r"-?(\d{1,3}(\.\d{3})+|\d+),\d+")

# Spellings seen in vendors' and brokers' exports, compared after lower-casing and dropping
# everything but letters and digits ("Adj. Close" -> "adjclose").
ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "timestamp", "time", "datetime", "day", "tradedate", "dt"),
    "open": ("open", "o", "openprice", "opening"),
    "high": ("high", "h", "highprice", "max"),
    "low": ("low", "l", "lowprice", "min"),
    "close": ("close", "c", "closeprice", "last", "closing"),
    "adj_close": ("adjclose", "adjustedclose", "closeadj", "adjclosing", "adjustedclosingprice"),
    "volume": ("volume", "vol", "v", "totalvolume"),
}

DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y%m%d",
    "%d/%m/%Y",
    "%b %d, %Y",
    "%d-%b-%Y",
)


@dataclass(frozen=True)
class CleanOHLCV:
    """A validated series: ``date, open, high, low, close, volume`` sorted by date."""

    frame: pl.DataFrame
    adjusted: bool


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def map_columns(columns: list[str]) -> dict[str, str]:
    """Map each canonical name (date, open, ..., adj_close, volume) to the frame's column."""
    by_key: dict[str, str] = {}
    for col in columns:
        by_key.setdefault(_key(col), col)
    found: dict[str, str] = {}
    for canonical, spellings in ALIASES.items():
        for spelling in spellings:
            if spelling in by_key:
                found[canonical] = by_key[spelling]
                break
    return found


def _rows(frame: pl.DataFrame, mask: pl.Expr) -> list[int]:
    return frame.filter(mask)["_row"].to_list()


def _show(rows: list) -> str:
    head = ", ".join(str(r) for r in rows[:SHOW_AT_MOST])
    return head + (f", ... ({len(rows)} in all)" if len(rows) > SHOW_AT_MOST else "")


def _decimal_comma(text: pl.Series, parsed: pl.Series) -> bool:
    """True when a column's unreadable values are numbers with a decimal comma."""
    if text.dtype != pl.String:
        return False
    bad = text.filter(parsed.is_null() & text.is_not_null()).str.strip_chars()
    return bad.len() > 0 and bool(bad.str.contains(f"^(?:{DECIMAL_COMMA.pattern})$").all())


def parse_dates(values: pl.Series) -> tuple[pl.Series, list[int]]:
    """Dates from a column of any common type; also the positions that did not parse."""
    if values.dtype == pl.Date:
        parsed = values
    elif isinstance(values.dtype, pl.Datetime):
        parsed = values.dt.date()
    elif values.dtype.is_integer():
        as_text = values.cast(pl.String)
        parsed = as_text.str.to_date("%Y%m%d", strict=False)
        if parsed.null_count() > values.null_count():
            # Epoch seconds or milliseconds.
            unit = "ms" if values.drop_nulls().abs().max() > 10**11 else "s"
            parsed = pl.from_epoch(values, time_unit=unit).dt.date()
    else:
        text = values.cast(pl.String).str.strip_chars()
        best: pl.Series | None = None
        for fmt in DATE_FORMATS:
            candidate = text.str.to_date(fmt, strict=False)
            if best is None or candidate.null_count() < best.null_count():
                best = candidate
            if candidate.null_count() == text.null_count():
                break
        if best is None or best.null_count() > text.null_count():
            # ISO timestamps with a time of day or a UTC offset ("2020-01-02 00:00:00-05:00").
            stamp = text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
            if best is None or stamp.null_count() < best.null_count():
                best = stamp
        parsed = best
    bad = [i for i, (v, p) in enumerate(zip(values.to_list(), parsed.to_list())) if p is None]
    return parsed.alias("date"), bad


def validate_ohlcv(frame: pl.DataFrame, name: str, min_rows: int = 250) -> CleanOHLCV:
    """Check a raw frame from any source and return the stored form.

    Args:
        frame: columns in any common spelling; extra columns are ignored.
        name: what to call the input in messages (a file name or ``TICKER (source)``).
        min_rows: fewest rows a valid series may have.

    Raises:
        DataValidationError: listing every problem found.
    """
    mapping = map_columns(frame.columns)
    missing = [c for c in OHLCV_COLUMNS if c not in mapping]
    if missing:
        found = ", ".join(frame.columns) or "no columns"
        raise DataValidationError(
            name,
            [f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (found: {found})"],
        )
    problems: list[str] = []
    adjusted = "adj_close" in mapping
    wanted = [*OHLCV_COLUMNS, "adj_close"] if adjusted else list(OHLCV_COLUMNS)
    df = frame.select(pl.col(mapping[c]).alias(c) for c in wanted)
    # 1-based data-row numbers of the input, so messages point at the user's file.
    df = df.with_row_index("_row", offset=1)

    dates, bad_dates = parse_dates(df["date"])
    if bad_dates:
        shown = [f"{df['_row'][i]} ({df['date'][i]!r})" for i in bad_dates]
        problems.append(f"dates that do not parse in rows {_show(shown)}")
    numeric = [c for c in wanted if c != "date"]
    casted = {c: df[c].cast(pl.Float64, strict=False) for c in numeric}
    comma_columns = [c for c in numeric if _decimal_comma(df[c], casted[c])]
    if comma_columns:
        c = comma_columns[0]
        first = (casted[c].is_null() & df[c].is_not_null()).arg_true()[0]
        problems.append(
            f"{', '.join(comma_columns)} use a decimal comma (row {df['_row'][first]}: "
            f"{df[c][first]!r}); save the file with '.' as the decimal separator"
        )
    for c in numeric:
        if c in comma_columns:
            continue
        not_numeric = (casted[c].is_null() & df[c].is_not_null()).arg_true().to_list()
        if not_numeric:
            problems.append(f"non-numeric {c} in rows {_show([df['_row'][i] for i in not_numeric])}")
    # Only values that were empty in the file are missing; unreadable ones were reported above.
    originally_null = {c: df[c].is_null() for c in numeric}
    df = df.with_columns(dates, *(s.alias(c) for c, s in casted.items()))

    for c in numeric:
        rows = df.filter(originally_null[c])["_row"].to_list()
        if rows:
            problems.append(f"missing {c} values in rows {_show(rows)}")
    for c in numeric:
        rows = _rows(df, pl.col(c).is_not_null() & ~pl.col(c).is_finite())
        if rows:
            problems.append(f"NaN or infinite {c} in rows {_show(rows)}")
    today = dt.date.today()
    early = _rows(df, pl.col("date") < EARLIEST_DATE)
    if early:
        problems.append(f"dates before {EARLIEST_DATE.isoformat()} in rows {_show(early)}")
    late = _rows(df, pl.col("date") > today)
    if late:
        problems.append(f"dates after today ({today.isoformat()}) in rows {_show(late)}")

    dup = (
        df.filter(pl.col("date").is_not_null() & pl.col("date").is_duplicated())["date"]
        .unique()
        .sort()
        .to_list()
    )
    if dup:
        problems.append(f"duplicate dates {_show([d.isoformat() for d in dup])}")

    price_cols = [*PRICE_COLUMNS, *(("adj_close",) if adjusted else ())]
    # Rows with a NaN or infinite value were reported above; comparing them says nothing more.
    checked = df.filter(pl.all_horizontal(pl.col(c).is_finite().fill_null(False) for c in numeric))
    nonpositive = _rows(checked, pl.any_horizontal(pl.col(c) <= 0 for c in price_cols))
    if nonpositive:
        problems.append(f"prices <= 0 in rows {_show(nonpositive)}")
    top = pl.max_horizontal("open", "close")
    bottom = pl.min_horizontal("open", "close")
    high_bad = _rows(checked, pl.col("high") < top * (1 - HIGH_LOW_TOLERANCE))
    if high_bad:
        problems.append(
            f"{len(high_bad)} rows with high below max(open, close), first rows {_show(high_bad)}"
        )
    low_bad = _rows(checked, pl.col("low") > bottom * (1 + HIGH_LOW_TOLERANCE))
    if low_bad:
        problems.append(
            f"{len(low_bad)} rows with low above min(open, close), first rows {_show(low_bad)}"
        )
    negative_volume = _rows(checked, pl.col("volume") < 0)
    if negative_volume:
        problems.append(f"negative volume in rows {_show(negative_volume)}")
    if df.height < min_rows:
        problems.append(f"only {df.height} rows; at least {min_rows} are needed (data.min_rows)")
    if problems:
        raise DataValidationError(name, problems)

    df = df.sort("date")
    if adjusted:
        # Rescale OHLC by adj_close/close so that the stored series is split- and
        # dividend-adjusted throughout, not only its close.
        factor = pl.col("adj_close") / pl.col("close")
        df = df.with_columns(*(pl.col(c) * factor for c in PRICE_COLUMNS))
    return CleanOHLCV(frame=df.select(OHLCV_COLUMNS), adjusted=adjusted)
