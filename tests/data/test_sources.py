"""The Yahoo source with yfinance's call replaced: recorded data, empty answers, rate limits."""

import datetime as dt
import logging
import socket

import pandas as pd
import pytest
from yfinance.exceptions import YFRateLimitError

from fintrain.data import sources
from fintrain.errors import SourceError


def recorded_history(msft) -> pd.DataFrame:
    """A frame shaped as yfinance's history() returns it (tz-aware DatetimeIndex)."""
    frame = msft.head(400)
    index = pd.DatetimeIndex(pd.to_datetime(frame["date"].to_list())).tz_localize("America/New_York")
    out = pd.DataFrame(
        {name.title(): frame[name].to_list() for name in ("open", "high", "low", "close", "volume")},
        index=index,
    )
    out.index.name = "Date"
    return out


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(sources, "sleep", waited.append)
    return waited


def test_recorded_frame_becomes_polars(monkeypatch, msft, sleeps):
    monkeypatch.setattr(sources, "yahoo_history", lambda t, s, e: recorded_history(msft))
    raw = sources.fetch_yahoo("MSFT")
    assert raw.frame.height == 400
    assert raw.frame["date"][0] == dt.date(2000, 3, 1)
    assert raw.adjusted and raw.source == "yahoo"
    assert sleeps == []


def test_rate_limit_is_retried_with_doubling_backoff(monkeypatch, msft, sleeps):
    calls = []

    def flaky(ticker, start, end):
        calls.append(ticker)
        if len(calls) < 3:
            raise YFRateLimitError()
        return recorded_history(msft)

    monkeypatch.setattr(sources, "yahoo_history", flaky)
    raw = sources.fetch_yahoo("MSFT", retries=4, backoff_s=1.5)
    assert raw.frame.height == 400
    assert sleeps == [1.5, 3.0]


def test_persistent_rate_limit_gives_up_with_advice(monkeypatch, sleeps):
    def limited(ticker, start, end):
        raise YFRateLimitError()

    monkeypatch.setattr(sources, "yahoo_history", limited)
    with pytest.raises(SourceError, match="rate-limiting requests for SPY.*--source sample"):
        sources.fetch_yahoo("SPY", retries=2, backoff_s=1)
    assert sleeps == [1, 2]


def test_network_failure_is_a_clear_error(monkeypatch, sleeps):
    def offline(ticker, start, end):
        raise ConnectionError("Failed to resolve host")

    monkeypatch.setattr(sources, "yahoo_history", offline)
    with pytest.raises(SourceError, match=r"could not reach Yahoo Finance to fetch SPY: Failed to resolve host "
                                          r"\(gave up after 1 retries\).*data import FILE --ticker SPY"):
        sources.fetch_yahoo("SPY", retries=1, backoff_s=0)


def test_sample_source_lists_available_tickers():
    with pytest.raises(SourceError, match="no FB; available: AAPL, GOOG, IBM, MSFT"):
        sources.fetch_sample("FB")


def test_sample_source_filters_dates():
    raw = sources.fetch_sample("IBM", start=dt.date(2010, 1, 1), end=dt.date(2010, 12, 31))
    assert raw.frame["date"].min() >= dt.date(2010, 1, 1)
    assert raw.frame["date"].max() <= dt.date(2010, 12, 31)
    assert 240 < raw.frame.height < 260


def test_http_client_connection_errors_count_as_network(monkeypatch, sleeps):
    class ClientConnectionError(OSError):
        """Shaped like curl_cffi's: its own ConnectionError, not the builtin one."""

    ClientConnectionError.__name__ = "ConnectionError"

    class DNSError(ClientConnectionError):
        pass

    def offline(ticker, start, end):
        raise DNSError("curl: (6) Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(sources, "yahoo_history", offline)
    with pytest.raises(SourceError, match="could not reach Yahoo Finance to fetch SPY"):
        sources.fetch_yahoo("SPY", retries=2, backoff_s=0.5)
    assert sleeps == [0.5, 1.0]


def unresolvable(host):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_an_unresolvable_host_is_no_network_at_once_without_retries(monkeypatch, sleeps):
    calls = []
    monkeypatch.setattr(sources, "resolve_host", unresolvable)
    monkeypatch.setattr(sources, "yahoo_history", lambda *args: calls.append(args))
    with pytest.raises(SourceError) as raised:
        sources.fetch_yahoo("SPY", retries=4, backoff_s=2)
    message = str(raised.value)
    assert message.startswith("could not reach Yahoo Finance to fetch SPY: cannot resolve query2.finance.yahoo.com")
    assert "no network or no DNS" in message
    assert "unknown" not in message and "delisted" not in message
    # Suggestions that work offline: the sample has MSFT (not SPY), and a file import.
    assert "`fintrain train --ticker MSFT --source sample`" in message
    assert "`fintrain data import FILE --ticker SPY`" in message
    assert calls == [] and sleeps == []


def test_dns_failing_during_the_retries_stops_them(monkeypatch, sleeps, caplog):
    answers = iter([ConnectionError("Connection reset"), ConnectionError("Could not resolve host")])
    resolvable = iter([True, True])

    def resolve(host):
        if not next(resolvable, False):
            unresolvable(host)

    def flaky(ticker, start, end):
        raise next(answers)

    monkeypatch.setattr(sources, "resolve_host", resolve)
    monkeypatch.setattr(sources, "yahoo_history", flaky)
    with caplog.at_level(logging.WARNING), pytest.raises(SourceError, match="could not reach Yahoo Finance"):
        sources.fetch_yahoo("SPY", retries=4, backoff_s=1)
    assert sleeps == [1]
    assert [r.getMessage()[-5:] for r in caplog.records] == ["(1/4)"]


def test_an_empty_answer_when_dns_fails_is_no_network_not_an_unknown_ticker(monkeypatch, msft, sleeps):
    """yfinance swallows the connection error and answers with an empty table."""
    looked_up = []

    def resolve(host):
        looked_up.append(host)
        if len(looked_up) > 1:
            unresolvable(host)

    monkeypatch.setattr(sources, "resolve_host", resolve)
    monkeypatch.setattr(sources, "yahoo_history", lambda t, s, e: recorded_history(msft).head(0))
    with pytest.raises(SourceError, match="could not reach Yahoo Finance to fetch MSFT: cannot resolve"):
        sources.fetch_yahoo("MSFT", retries=4)
    assert sleeps == []


def test_an_empty_answer_with_the_network_up_names_the_ticker_and_what_works(monkeypatch, msft, sleeps):
    monkeypatch.setattr(sources, "yahoo_history", lambda t, s, e: recorded_history(msft).head(0))
    with pytest.raises(SourceError) as raised:
        sources.fetch_yahoo("IBM", retries=4)
    message = str(raised.value)
    assert message.startswith("Yahoo Finance returned no data for IBM (an unknown or delisted ticker")
    assert "`fintrain train --ticker IBM --source sample`" in message
    assert sleeps == []


def test_the_printed_retry_count_is_the_retries_done(monkeypatch, msft, sleeps, caplog):
    """Network errors, then empty tables (yfinance swallowing the same errors): every retry is
    taken and numbered against the real total."""
    answers = iter([ConnectionError("reset"), ConnectionError("reset")])

    def flaky(ticker, start, end):
        answer = next(answers, None)
        if answer is not None:
            raise answer
        return recorded_history(msft).head(0)

    monkeypatch.setattr(sources, "yahoo_history", flaky)
    with caplog.at_level(logging.WARNING), pytest.raises(SourceError, match="returned no data for SPY"):
        sources.fetch_yahoo("SPY", retries=3, backoff_s=1)
    assert [r.getMessage()[-5:] for r in caplog.records] == ["(1/3)", "(2/3)", "(3/3)"]
    assert sleeps == [1, 2, 4]


class RecordingTicker:
    """Stands in for ``yfinance.Ticker``: keeps the arguments of each history() call."""

    calls: list[tuple[str, dict]] = []
    answer: pd.DataFrame

    def __init__(self, ticker: str):
        self.ticker = ticker

    def history(self, **kwargs):
        RecordingTicker.calls.append((self.ticker, kwargs))
        return RecordingTicker.answer


@pytest.fixture
def recording_ticker(monkeypatch, msft):
    import yfinance

    RecordingTicker.calls = []
    RecordingTicker.answer = recorded_history(msft)
    monkeypatch.setattr(yfinance, "Ticker", RecordingTicker)
    return RecordingTicker.calls


def test_yahoo_call_asks_for_adjusted_prices_explicitly(recording_ticker, sleeps):
    """Adjusted OHLC is requested by name, not left to yfinance's defaults (which have changed
    between versions), and no dividend or split columns are asked for."""
    raw = sources.fetch_yahoo("MSFT")
    [(ticker, kwargs)] = recording_ticker
    assert ticker == "MSFT"
    assert kwargs["auto_adjust"] is True and kwargs["actions"] is False
    assert kwargs["period"] == "max" and "start" not in kwargs
    assert raw.adjusted and raw.frame.height == 400


def test_yahoo_call_makes_the_inclusive_end_exclusive(recording_ticker, sleeps):
    sources.yahoo_history("SPY", dt.date(2010, 1, 4), dt.date(2010, 12, 31))
    [(_, kwargs)] = recording_ticker
    assert kwargs["start"] == "2010-01-04" and kwargs["end"] == "2011-01-01" and "period" not in kwargs
    assert kwargs["auto_adjust"] is True
