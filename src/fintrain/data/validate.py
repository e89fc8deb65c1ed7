"""OHLCV validation: recognise a vendor's columns, check every rule, report every problem.

Nothing is written until a frame passes; the error lists all the problems found, not just the
first, so a user can fix a file in one go.
"""

from __future__ import annotations

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
    for c in numeric:
        not_numeric = (casted[c].is_null() & df[c].is_not_null()).arg_true().to_list()
        if not_numeric:
            problems.append(f"non-numeric {c} in rows {_show([df['_row'][i] for i in not_numeric])}")
    df = df.with_columns(dates, *(s.alias(c) for c, s in casted.items()))

    for c in [*PRICE_COLUMNS, *(("adj_close",) if adjusted else ())]:
        rows = _rows(df, pl.col(c).is_null())
        if rows:
            problems.append(f"missing {c} values in rows {_show(rows)}")
    rows = _rows(df, pl.col("volume").is_null())
    if rows:
        problems.append(f"missing volume values in rows {_show(rows)}")

    dup = (
        df.filter(pl.col("date").is_not_null() & pl.col("date").is_duplicated())["date"]
        .unique()
        .sort()
        .to_list()
    )
    if dup:
        problems.append(f"duplicate dates {_show([d.isoformat() for d in dup])}")

    price_cols = [*PRICE_COLUMNS, *(("adj_close",) if adjusted else ())]
    nonpositive = _rows(df, pl.any_horizontal(pl.col(c) <= 0 for c in price_cols))
    if nonpositive:
        problems.append(f"prices <= 0 in rows {_show(nonpositive)}")
    top = pl.max_horizontal("open", "close")
    bottom = pl.min_horizontal("open", "close")
    high_bad = _rows(df, pl.col("high") < top * (1 - HIGH_LOW_TOLERANCE))
    if high_bad:
        problems.append(
            f"{len(high_bad)} rows with high below max(open, close), first rows {_show(high_bad)}"
        )
    low_bad = _rows(df, pl.col("low") > bottom * (1 + HIGH_LOW_TOLERANCE))
    if low_bad:
        problems.append(
            f"{len(low_bad)} rows with low above min(open, close), first rows {_show(low_bad)}"
        )
    negative_volume = _rows(df, pl.col("volume") < 0)
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
