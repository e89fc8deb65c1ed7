"""Where daily OHLCV comes from: Yahoo Finance, the offline sample set, or a user's file.

Each source returns a raw ``pl.DataFrame`` in its own column spelling; validation and storage
are the same for all of them. The network sits behind ``yahoo_history``, ``resolve_host`` and
``sleep`` so tests replace them and never touch the network.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fintrain.errors import DataError, SourceError

log = logging.getLogger(__name__)

# bokeh-sampledata also has FB, but only 196 rows: too short to train on.
SAMPLE_TICKERS = ("AAPL", "GOOG", "IBM", "MSFT")

sleep: Callable[[float], None] = time.sleep

# The host yfinance asks for prices. A lookup that fails means no network (or no DNS): yfinance
# would swallow the error and answer with an empty table, which reads as an unknown ticker.
YAHOO_HOST = "query2.finance.yahoo.com"


def resolve_host(host: str) -> None:
    """Look ``host`` up in DNS; an OSError (``socket.gaierror``) when it cannot be resolved.

    The seam tests replace: they never touch the network.
    """
    socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)


@dataclass(frozen=True)
class RawSeries:
    """A source's answer before validation."""

    frame: pl.DataFrame
    source: str
    adjusted: bool


def yahoo_history(ticker: str, start: dt.date | None, end: dt.date | None) -> Any:
    """Yahoo's adjusted daily history as yfinance returns it (a pandas DataFrame)."""
    import yfinance as yf  # imported here: it is slow to import and only this source needs it

    kwargs: dict[str, Any] = {"auto_adjust": True, "actions": False}
    if start is None and end is None:
        kwargs["period"] = "max"
    else:
        kwargs["start"] = (start or dt.date(1900, 1, 1)).isoformat()
        # yfinance's end is exclusive; fintrain's is inclusive.
        kwargs["end"] = ((end or dt.date.today()) + dt.timedelta(days=1)).isoformat()
    # yfinance logs its own warnings and errors for every failed request; fintrain reports the
    # outcome once, in its own words.
    logging.getLogger("yfinance").setLevel(logging.CRITICAL)
    return yf.Ticker(ticker).history(**kwargs)


def _is_rate_limit(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "ratelimit" in text or "rate limit" in text or "too many requests" in text


def _is_network(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    # yfinance's HTTP clients (curl_cffi, requests) have their own ConnectionError classes.
    names = " ".join(cls.__name__.lower() for cls in type(exc).__mro__)
    return any(word in names for word in ("connection", "timeout", "curlerror", "requestexception", "dnserror"))


def pandas_to_polars(history: Any) -> pl.DataFrame:
    """yfinance's frame (DatetimeIndex, Open/High/Low/Close/Volume) as a Polars frame."""
    index = history.index
    dates = [ts.date() for ts in index]
    columns = {"date": pl.Series("date", dates, dtype=pl.Date)}
    for name in history.columns:
        if str(name).lower() in ("open", "high", "low", "close", "volume", "adj close"):
            columns[str(name)] = pl.Series(str(name), history[name].to_numpy(), dtype=pl.Float64)
    return pl.DataFrame(columns)


def offline_hint(ticker: str) -> str:
    """What works without Yahoo: the offline sample (a ticker it has) or a file of the user's."""
    sample = ticker if ticker in SAMPLE_TICKERS else "MSFT"
    return (
        f"without Yahoo, train on the offline sample (`fintrain train --ticker {sample} --source sample`; "
        f"it has {', '.join(SAMPLE_TICKERS)}) or import a file of daily prices "
        f"(`fintrain data import FILE --ticker {ticker}`)"
    )


def yahoo_unresolvable() -> str | None:
    """Why Yahoo's host cannot be looked up (no network, no DNS), or None when it can."""
    try:
        resolve_host(YAHOO_HOST)
    except OSError as exc:  # socket.gaierror
        return f"cannot resolve {YAHOO_HOST} ({exc.strerror or exc}): no network or no DNS"
    return None


def fetch_yahoo(
    ticker: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    retries: int = 4,
    backoff_s: float = 2.0,
) -> RawSeries:
    """Download adjusted daily OHLCV from Yahoo, retrying rate limits and network errors with backoff.

    yfinance swallows most network errors and answers with an empty table, so an empty answer, a
    network error and the start are each checked against DNS: a host that cannot be resolved
    ends the fetch at once ("could not reach Yahoo Finance"), without retries, and is never
    reported as an unknown ticker.
    """
    hint = offline_hint(ticker)

    def unreachable(why: str) -> SourceError:
        return SourceError(f"could not reach Yahoo Finance to fetch {ticker}: {why}; {hint}")

    if (why := yahoo_unresolvable()) is not None:
        raise unreachable(why)
    wait = backoff_s
    after_network_error = False
    for attempt in range(retries + 1):
        try:
            history = yahoo_history(ticker, start, end)
        except Exception as exc:  # yfinance raises many types; classify them below
            rate_limited, network = _is_rate_limit(exc), _is_network(exc)
            if network and (why := yahoo_unresolvable()) is not None:
                raise unreachable(why) from exc
            if (rate_limited or network) and attempt < retries:
                log.warning("Yahoo: %s; retrying in %.1f s (%d/%d)", exc, wait, attempt + 1, retries)
                sleep(wait)
                wait *= 2
                after_network_error = network
                continue
            if rate_limited:
                raise SourceError(
                    f"Yahoo is rate-limiting requests for {ticker} (gave up after {retries} "
                    f"retries); wait a few minutes, or {hint}"
                ) from exc
            if network:
                raise unreachable(f"{exc} (gave up after {retries} retries)") from exc
            if "missing" in type(exc).__name__.lower():  # YFTickerMissingError and friends
                history = None
                break
            raise SourceError(f"Yahoo failed for {ticker}: {exc}; {hint}") from exc
        if history is not None and len(history) > 0:
            return RawSeries(frame=pandas_to_polars(history), source="yahoo", adjusted=True)
        if (why := yahoo_unresolvable()) is not None:
            raise unreachable(why)
        if not after_network_error or attempt == retries:
            break
        # An empty table right after network errors is most likely one more, swallowed by yfinance.
        log.warning("Yahoo: an empty answer after a network error; retrying in %.1f s (%d/%d)",
                    wait, attempt + 1, retries)
        sleep(wait)
        wait *= 2
    raise SourceError(
        f"Yahoo Finance returned no data for {ticker} (an unknown or delisted ticker, or a blocked "
        f"request); check the symbol on finance.yahoo.com, or {hint}"
    )


def fetch_sample(ticker: str, start: dt.date | None = None, end: dt.date | None = None) -> RawSeries:
    """Real daily OHLCV shipped by bokeh-sampledata (public domain), read offline."""
    if ticker not in SAMPLE_TICKERS:
        raise SourceError(
            f"the sample source has no {ticker}; available: {', '.join(SAMPLE_TICKERS)}"
        )
    from bokeh_sampledata import stocks

    data = getattr(stocks, ticker)
    frame = pl.DataFrame(
        {k: data[k] for k in ("date", "open", "high", "low", "close", "volume", "adj_close")}
    ).with_columns(pl.col("date").str.to_date("%Y-%m-%d"))
    if start is not None:
        frame = frame.filter(pl.col("date") >= start)
    if end is not None:
        frame = frame.filter(pl.col("date") <= end)
    return RawSeries(frame=frame, source="sample", adjusted=True)


def read_table(path: Path) -> pl.DataFrame:
    """A CSV or Parquet file as a frame, every CSV column read as text or number as found.

    CSV text may be UTF-8 (with or without a byte-order mark) or UTF-16 (with a byte-order mark,
    or without one when the text is ASCII, as spreadsheet exports are); any other encoding is
    refused with a message that says so.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file; give a CSV or Parquet file")
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv"):
            text = decode_text(path.read_bytes(), path.name)
            header = text.split("\n", 1)[0]
            separator = "\t" if suffix == ".tsv" else _sniff_separator(header)
            return pl.read_csv(
                text.encode("utf-8"), separator=separator, infer_schema_length=None, try_parse_dates=False
            )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"could not read {path.name}: {exc}") from exc
    raise DataError(f"{path.name}: unsupported file type {suffix or '(none)'}; use CSV or Parquet")


def decode_text(data: bytes, name: str) -> str:
    """A text file's bytes as a string: UTF-8, or UTF-16 by its byte-order mark or its zero bytes."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif len(data) >= 2 and data[1:2] == b"\x00" and data[0:1] != b"\x00":
        encoding = "utf-16-le"
    elif len(data) >= 2 and data[0:1] == b"\x00" and data[1:2] != b"\x00":
        encoding = "utf-16-be"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        label = "UTF-8" if encoding == "utf-8-sig" else encoding.upper().replace("-LE", " (little-endian)").replace("-BE", " (big-endian)")
        raise DataError(
            f"{name} is not valid {label} text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8 (or UTF-16 with a byte-order mark) and import it again"
        ) from exc


def _sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    return max(counts, key=counts.get) if max(counts.values()) > 0 else ","
