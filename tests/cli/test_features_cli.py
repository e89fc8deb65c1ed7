"""``fintrain features`` through the real CLI, on files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fintrain.features import feature_names, tier_warmup
from fintrain.storage import md5_file


def processed_entries(data_dir: Path) -> list[dict]:
    return json.loads((data_dir / "processed" / "manifest.json").read_text())["entries"]


def all_finite(frame: pl.DataFrame, columns: list[str]) -> bool:
    return all(frame.select(pl.col(columns).is_finite().all()).row(0))


def test_build_writes_features_and_a_manifest_entry_naming_the_raw_md5(cli):
    assert cli("data", "fetch", "MSFT", "--source", "sample").exit_code == 0
    result = cli("features", "build", "MSFT", "--tier", "a20")
    assert result.exit_code == 0, result.output
    assert "built MSFT.features.a20 v1" in result.stderr
    path = cli.features_file("MSFT")
    frame = pl.read_parquet(path)
    assert frame.columns[6:] == feature_names("a20") and len(frame.columns) == 26
    assert frame.height == 3270 - tier_warmup("a20")
    assert all_finite(frame, feature_names("a20"))
    (entry,) = processed_entries(cli.data_dir)
    assert entry["source_raw_md5"] == md5_file(cli.raw_file("MSFT"))
    assert entry["md5"] == md5_file(path)
    listed = json.loads(cli("data", "list", "--json").stdout)
    assert {e["dataset"] for e in listed} == {"MSFT.OHLCV.daily", "MSFT.features.a20"}


def test_second_build_is_a_no_op_that_says_so(cli):
    cli("data", "fetch", "IBM", "--source", "sample")
    cli("features", "build", "IBM")
    before = cli.features_file("IBM").stat().st_mtime_ns
    result = cli("features", "build", "IBM")
    assert result.exit_code == 0
    assert "up to date" in result.stderr and "nothing to do" in result.stderr
    assert len(processed_entries(cli.data_dir)) == 1
    assert cli.features_file("IBM").stat().st_mtime_ns == before


def test_new_raw_data_triggers_a_rebuild(cli):
    cli("data", "fetch", "IBM", "--source", "sample", "--end", "2010-12-31")
    first = json.loads(cli("features", "build", "IBM", "--tier", "a50", "--json").stdout)
    cli("data", "fetch", "IBM", "--source", "sample")
    result = cli("features", "build", "IBM", "--tier", "a50", "--json")
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["rebuilt"] is True and second["reason"] == "raw data changed"
    assert second["version"] == 2 and second["rows"] > first["rows"]
    assert second["source_raw_md5"] != first["source_raw_md5"]
    assert second["n_features"] == 50


def test_too_short_data_is_one_clear_line_and_exit_1(cli):
    cli("data", "fetch", "MSFT", "--source", "sample", "--end", "2001-12-31")
    result = cli("features", "build", "MSFT", "--tier", "a20")
    assert result.exit_code == 1
    assert "MSFT has 460 rows; tier a20 needs at least 522" in result.stderr
    assert "Traceback" not in result.output
    assert not (cli.data_dir / "processed").exists()


def test_missing_raw_data_and_unknown_tier(cli):
    missing = cli("features", "build", "QQQ")
    assert missing.exit_code == 1 and "fintrain data fetch QQQ" in missing.stderr
    unknown = cli("features", "build", "QQQ", "--tier", "a7")
    assert unknown.exit_code == 2 and "known tiers: a20, a50" in unknown.stderr


def test_describe_lists_tiers_and_each_feature(cli):
    tiers = cli("features", "describe")
    assert tiers.exit_code == 0 and "a20" in tiers.stdout and "a50" in tiers.stdout
    rows = json.loads(cli("features", "describe", "a20", "--json").stdout)
    assert [r["name"] for r in rows] == feature_names("a20")
    assert all(r["formula"] and r["warmup_rows"] >= 0 for r in rows)
    assert {r["frequency"] for r in rows} == {"daily", "weekly"}
    assert len(json.loads(cli("features", "describe", "a50", "--json").stdout)) == 50
    table = cli("features", "describe", "a50")
    assert "dist_52w_high" in table.stdout
    assert cli("features", "describe", "zz").exit_code == 2


def test_help_ends_with_examples(cli):
    for command in ("build", "describe"):
        result = cli("features", command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.stdout
        assert f"fintrain features {command}" in result.stdout.split("Examples:")[1]


def test_shared_spy_file_done_when(cli, spy_csv, tmp_path):
    """The issue's acceptance check on SPY 1993-2021: a20 and a50, finite, no look-ahead."""
    assert cli("data", "import", str(spy_csv), "--ticker", "SPY", "--adjusted").exit_code == 0
    raw_md5 = md5_file(cli.raw_file("SPY"))
    for tier, count in (("a20", 20), ("a50", 50)):
        result = cli("features", "build", "SPY", "--tier", tier, "--json")
        assert result.exit_code == 0, result.output
        entry = json.loads(result.stdout)
        assert entry["source_raw_md5"] == raw_md5
        frame = pl.read_parquet(cli.data_dir / entry["path"])
        assert len(frame.columns) - 6 == count
        assert all_finite(frame, feature_names(tier))
    head = tmp_path / "spy_head.csv"
    pl.read_csv(spy_csv).head(5000).write_csv(head)
    cli("data", "import", str(head), "--ticker", "SPYHEAD", "--adjusted")
    for tier in ("a20", "a50"):
        assert cli("features", "build", "SPYHEAD", "--tier", tier).exit_code == 0
        full = pl.read_parquet(cli.features_file("SPY", tier))
        part = pl.read_parquet(cli.features_file("SPYHEAD", tier))
        assert part.height == 5000 - tier_warmup(tier)
        assert_frame_equal(part, full.head(part.height))


@pytest.mark.slow
def test_several_tickers_build_in_one_pass_like_one_at_a_time(cli):
    import polars as pl

    assert cli("data", "fetch", "AAPL,IBM,GOOG", "--source", "sample").exit_code == 0
    result = cli("features", "build", "AAPL,IBM,GOOG", "--tier", "a20", "--json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["dataset"] for e in entries] == ["AAPL.features.a20", "IBM.features.a20", "GOOG.features.a20"]
    assert all(e["rebuilt"] for e in entries)
    pooled = {t: pl.read_parquet(cli.features_file(t)) for t in ("AAPL", "IBM", "GOOG")}
    for ticker in ("AAPL", "IBM", "GOOG"):
        forced = cli("features", "build", ticker, "--tier", "a20", "--force")
        assert forced.exit_code == 0
        alone = pl.read_parquet(cli.features_file(ticker))
        assert alone.columns == pooled[ticker].columns and alone.height == pooled[ticker].height
        for column in alone.columns[1:]:
            assert alone[column].to_numpy() == pytest.approx(pooled[ticker][column].to_numpy(), rel=1e-9, abs=1e-12)
    again = cli("features", "build", "AAPL,IBM,GOOG", "--tier", "a20")
    assert again.exit_code == 0 and again.stderr.count("up to date") == 3
