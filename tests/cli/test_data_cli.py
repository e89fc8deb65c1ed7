"""``fintrain data`` through the real CLI, on files in tmp_path."""

from __future__ import annotations

import json

import polars as pl
import pytest
from bokeh_sampledata import stocks

from fintrain.data import sources
from fintrain.storage import md5_file


def msft_rows(n: int = 300) -> dict[str, list]:
    d = stocks.MSFT
    return {k: d[k][:n] for k in ("date", "open", "high", "low", "close", "volume", "adj_close")}


def write_csv(path, header: list[str], rows: list[list], sep: str = ",") -> None:
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_fetch_sample_writes_parquet_and_manifest(cli):
    result = cli("data", "fetch", "MSFT", "--source", "sample")
    assert result.exit_code == 0, result.output
    path = cli.raw_file("MSFT")
    frame = pl.read_parquet(path)
    assert frame.height == 3270
    assert frame.columns == ["date", "open", "high", "low", "close", "volume"]
    assert frame.schema["date"] == pl.Date and frame["date"].is_sorted()
    manifest = json.loads((cli.data_dir / "raw" / "manifest.json").read_text())
    assert manifest["schema_version"] == 2
    (entry,) = manifest["entries"]
    assert entry["dataset"] == "MSFT.OHLCV.daily"
    assert entry["path"] == f"raw/MSFT/{entry['md5']}.parquet"
    assert entry["md5"] == md5_file(path)
    assert entry["rows"] == 3270
    assert (entry["first_date"], entry["last_date"]) == ("2000-03-01", "2013-03-01")
    assert entry["source"] == "sample" and entry["adjusted"] is True
    assert entry["created_at"].endswith("+00:00")


def test_refetch_appends_and_latest_entry_is_current(cli):
    assert cli("data", "fetch", "IBM", "--source", "sample", "--end", "2005-12-31").exit_code == 0
    assert cli("data", "fetch", "IBM", "--source", "sample").exit_code == 0
    manifest = json.loads((cli.data_dir / "raw" / "manifest.json").read_text())
    assert len(manifest["entries"]) == 2
    listed = json.loads(cli("data", "list", "--json").stdout)
    assert len(listed) == 1 and listed[0]["rows"] == 3270


def test_import_yahoo_style_csv_adjusts_prices(cli, tmp_path):
    d = msft_rows()
    header = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    rows = list(zip(d["date"], d["open"], d["high"], d["low"], d["close"], d["adj_close"], d["volume"]))
    write_csv(tmp_path / "yahoo.csv", header, rows)
    result = cli("data", "import", str(tmp_path / "yahoo.csv"), "--ticker", "msft")
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(cli.raw_file("MSFT"))
    assert frame["close"].to_list() == pytest.approx(d["adj_close"])
    entry = json.loads(cli("data", "list", "--json").stdout)[0]
    assert entry["adjusted"] is True and entry["source"] == "import:yahoo.csv"


def test_import_semicolon_csv_with_timestamps_and_extra_columns(cli, tmp_path):
    d = msft_rows()
    header = ["timestamp", "symbol", "open", "high", "low", "close", "volume", "vwap"]
    rows = [
        [f"{day} 00:00:00", "MSFT", o, h, lo, c, v, c]
        for day, o, h, lo, c, v in zip(d["date"], d["open"], d["high"], d["low"], d["close"], d["volume"])
    ]
    write_csv(tmp_path / "broker.csv", header, rows, sep=";")
    result = cli("data", "import", str(tmp_path / "broker.csv"), "--ticker", "MSFT")
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(cli.raw_file("MSFT"))
    assert frame.height == 300 and frame["close"].to_list() == pytest.approx(d["close"])


def test_import_us_dates_reordered_columns_unsorted_rows(cli, tmp_path):
    d = msft_rows()
    header = ["VOLUME", "CLOSE", "LOW", "HIGH", "OPEN", "DATE"]
    rows = [
        [v, c, lo, h, o, f"{day[5:7]}/{day[8:10]}/{day[:4]}"]
        for day, o, h, lo, c, v in zip(d["date"], d["open"], d["high"], d["low"], d["close"], d["volume"])
    ]
    write_csv(tmp_path / "export.csv", header, list(reversed(rows)))
    result = cli("data", "import", str(tmp_path / "export.csv"), "--ticker", "MSFT")
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(cli.raw_file("MSFT"))
    assert frame["date"].is_sorted() and frame["date"][0].isoformat() == d["date"][0]


def test_import_parquet_with_datetime_column(cli, tmp_path):
    d = msft_rows()
    frame = pl.DataFrame(d).with_columns(pl.col("date").str.to_datetime("%Y-%m-%d").alias("Datetime")).drop("date")
    frame.write_parquet(tmp_path / "vendor.parquet")
    result = cli("data", "import", str(tmp_path / "vendor.parquet"), "--ticker", "MSFT")
    assert result.exit_code == 0, result.output
    stored = pl.read_parquet(cli.raw_file("MSFT"))
    assert stored.schema["date"] == pl.Date and stored.height == 300


def _good_header_and_rows():
    d = msft_rows()
    header = ["Date", "Open", "High", "Low", "Close", "Volume"]
    rows = [list(r) for r in zip(d["date"], d["open"], d["high"], d["low"], d["close"], d["volume"])]
    return header, rows


def _drop_close(header, rows):
    return header[:4] + header[5:], [r[:4] + r[5:] for r in rows]


def _bad_date(header, rows):
    rows[4][0] = "2000-02-31"
    return header, rows


def _duplicate(header, rows):
    rows[6][0] = rows[5][0]
    return header, rows


def _null_close(header, rows):
    rows[7][4] = ""
    return header, rows


def _negative_price(header, rows):
    rows[8][1] = -3
    return header, rows


def _high_too_low(header, rows):
    rows[9][2] = rows[9][4] * 0.5
    return header, rows


def _negative_volume(header, rows):
    rows[10][5] = -100
    return header, rows


def _too_short(header, rows):
    return header, rows[:50]


@pytest.mark.parametrize(
    "spoil, message",
    [
        (_drop_close, "missing column close"),
        (_bad_date, "dates that do not parse in rows 5"),
        (_duplicate, "duplicate dates"),
        (_null_close, "missing close values in rows 8"),
        (_negative_price, "prices <= 0 in rows 9"),
        (_high_too_low, "high below max(open, close)"),
        (_negative_volume, "negative volume in rows 11"),
        (_too_short, "only 50 rows"),
    ],
)
def test_invalid_file_is_refused_and_nothing_changes(cli, tmp_path, folder_snapshot, spoil, message):
    assert cli("data", "fetch", "MSFT", "--source", "sample").exit_code == 0
    before = folder_snapshot(cli.data_dir)
    header, rows = spoil(*_good_header_and_rows())
    write_csv(tmp_path / "bad.csv", header, rows)
    for ticker in ("MSFT", "NEW"):
        result = cli("data", "import", str(tmp_path / "bad.csv"), "--ticker", ticker)
        assert result.exit_code == 1
        assert message in result.stderr
        assert result.stderr.startswith("error: bad.csv is not valid daily OHLCV data")
        assert "Traceback" not in result.output
        assert folder_snapshot(cli.data_dir) == before


def test_missing_close_in_fresh_folder_creates_nothing(cli, tmp_path):
    header, rows = _drop_close(*_good_header_and_rows())
    write_csv(tmp_path / "noclose.csv", header, rows)
    result = cli("data", "import", str(tmp_path / "noclose.csv"), "--ticker", "SPY")
    assert result.exit_code == 1
    assert "close" in result.stderr
    assert not cli.data_dir.exists() or not any(cli.data_dir.rglob("*.parquet"))
    assert not (cli.data_dir / "raw" / "manifest.json").exists()


def test_verify_catches_modified_and_missing_files(cli):
    for ticker in ("MSFT", "IBM"):
        assert cli("data", "fetch", ticker, "--source", "sample").exit_code == 0
    ok = cli("data", "verify")
    assert ok.exit_code == 0 and "OK" in ok.stdout
    path = cli.raw_file("MSFT")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    ibm = cli.raw_file("IBM")
    ibm.unlink()
    bad = cli("data", "verify")
    assert bad.exit_code == 1
    assert "MISMATCH" in bad.stdout and "MISSING" in bad.stdout
    assert f"raw/MSFT/{path.name} (MISMATCH)" in bad.stderr and f"raw/IBM/{ibm.name} (MISSING)" in bad.stderr


def test_list_json_is_only_json(cli):
    assert cli("data", "fetch", "GOOG", "--source", "sample").exit_code == 0
    result = cli("data", "list", "--json")
    entries = json.loads(result.stdout)
    assert [e["dataset"] for e in entries] == ["GOOG.OHLCV.daily"]


def test_fetch_yahoo_through_cli_with_fake(cli, monkeypatch):
    monkeypatch.setattr(sources, "yahoo_history", lambda t, s, e: __import__("pandas").DataFrame())
    monkeypatch.setattr(sources, "sleep", lambda s: None)
    result = cli("data", "fetch", "NOPE")
    assert result.exit_code == 1
    assert "Yahoo Finance returned no data for NOPE" in result.stderr
    assert "fintrain data import" in result.stderr and "--source sample" in result.stderr
    assert not cli.data_dir.exists() or not any(cli.data_dir.rglob("*"))


def test_the_main_job_offline_says_no_network_at_once_and_what_works(cli, monkeypatch):
    """`fintrain train --tier a20 --budget 2m` on a machine whose DNS cannot resolve Yahoo."""
    import socket

    def unresolvable(host):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    waited = []
    monkeypatch.setattr(sources, "resolve_host", unresolvable)
    monkeypatch.setattr(sources, "sleep", waited.append)
    monkeypatch.setattr(sources, "yahoo_history", lambda *a: pytest.fail("asked Yahoo with no network"))
    result = cli("train", "--tier", "a20", "--budget", "2m", "--no-live", env={"COLUMNS": "300"})
    assert result.exit_code == 1
    *before, line = result.stderr.strip().splitlines()
    assert before == ["no raw data for SPY: fetching it from yahoo"], before
    assert line.startswith("error: could not reach Yahoo Finance to fetch SPY: cannot resolve query2.finance.yahoo.com")
    assert "`fintrain train --ticker MSFT --source sample`" in line
    assert "`fintrain data import FILE --ticker SPY`" in line
    assert waited == []
    assert not cli.runs_dir.exists() or not any(cli.runs_dir.iterdir())


def test_shared_spy_csv_imports(cli, spy_csv):
    result = cli("data", "import", str(spy_csv), "--ticker", "SPY", "--adjusted")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(cli("data", "list", "--json").stdout)
    assert entry["rows"] == 7192
    assert (entry["first_date"], entry["last_date"]) == ("1993-01-29", "2021-08-19")
    assert entry["adjusted"] is True
    assert cli("data", "verify").exit_code == 0


def test_fetch_several_tickers_and_a_universe_file(cli, tmp_path):
    assert cli("data", "fetch", "aapl,IBM", "--source", "sample").exit_code == 0
    universe = tmp_path / "u.txt"
    universe.write_text("# sample universe\nGOOG\nMSFT\n")
    assert cli("data", "fetch", "--universe", str(universe), "--source", "sample").exit_code == 0
    listed = json.loads(cli("data", "list", "--json").stdout)
    assert [e["dataset"] for e in listed] == [f"{t}.OHLCV.daily" for t in ("AAPL", "IBM", "GOOG", "MSFT")]
    dup = cli("data", "fetch", "IBM,ibm", "--source", "sample")
    assert dup.exit_code == 2 and "IBM listed more than once" in dup.stderr


def test_fetch_without_a_ticker_says_which_it_fetches_and_help_shows_the_default(cli, monkeypatch):
    import pandas as pd

    frame = pl.DataFrame({k: stocks.MSFT[k] for k in ("date", "open", "high", "low", "close", "volume")}).head(300)
    history = pd.DataFrame({c.title(): frame[c].to_list() for c in ("open", "high", "low", "close", "volume")},
                           index=pd.DatetimeIndex(pd.to_datetime(frame["date"].to_list())))
    asked = []
    monkeypatch.setattr(sources, "yahoo_history", lambda t, s, e: asked.append(t) or history)
    result = cli("data", "fetch")
    assert result.exit_code == 0, result.output
    assert asked == ["SPY"]
    assert result.stderr.splitlines()[0] == "no TICKER given: using SPY (data.ticker, default SPY)"
    text = " ".join(cli("data", "fetch", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "[TICKER]" in text and "(default: SPY, or data.ticker of --config)" in text
    named = cli("data", "fetch", "MSFT", "--source", "sample")
    assert "no TICKER given" not in named.stderr
