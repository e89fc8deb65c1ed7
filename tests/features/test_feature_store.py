"""Feature files and their manifest: build once, rebuild only when the raw data or tier changed."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from fintrain.data.sources import RawSeries
from fintrain.data.store import raw_path, save_raw
from fintrain.errors import ConfigError, DataError, FeatureError
from fintrain.features import (
    ensure_features,
    feature_names,
    features_path,
    read_features,
    store,
    tier_hash,
    tier_warmup,
)
from fintrain.storage import md5_file


def write_raw(data_dir: Path, ticker: str, frame: pl.DataFrame) -> dict:
    raw = RawSeries(frame=frame, source="test", adjusted=True)
    return save_raw(data_dir, ticker, raw, name=f"{ticker} test data", min_rows=1)


def manifest_entries(data_dir: Path) -> list[dict]:
    return json.loads((data_dir / "processed" / "manifest.json").read_text())["entries"]


def test_first_build_writes_the_file_and_a_complete_manifest_entry(
    tmp_path: Path, synthetic: pl.DataFrame
) -> None:
    raw_entry = write_raw(tmp_path, "ABC", synthetic)
    result = ensure_features(tmp_path, "ABC", "a20")
    assert result.rebuilt and result.reason == "new"
    assert result.path == features_path(tmp_path, "ABC", "a20")
    assert result.path == tmp_path / "processed" / "ABC.features.a20" / f"{result.entry['md5']}.parquet"
    on_disk = pl.read_parquet(result.path)
    assert on_disk.equals(result.frame)
    assert on_disk.columns == ["date", "open", "high", "low", "close", "volume", *feature_names("a20")]
    assert on_disk.height == synthetic.height - tier_warmup("a20")
    (entry,) = manifest_entries(tmp_path)
    assert entry == result.entry
    assert entry["dataset"] == "ABC.features.a20"
    assert entry["version"] == 1
    assert entry["tier"] == "a20"
    assert entry["tier_hash"] == tier_hash("a20")
    assert entry["path"] == f"processed/ABC.features.a20/{entry['md5']}.parquet"
    assert entry["md5"] == md5_file(result.path)
    assert entry["rows"] == on_disk.height
    assert entry["source_raw_md5"] == raw_entry["md5"] == md5_file(raw_path(tmp_path, "ABC"))
    assert entry["created_at"]


def test_second_build_is_a_no_op(tmp_path: Path, synthetic: pl.DataFrame) -> None:
    write_raw(tmp_path, "ABC", synthetic)
    first = ensure_features(tmp_path, "ABC", "a20")
    mtime = first.path.stat().st_mtime_ns
    second = ensure_features(tmp_path, "abc", "a20")
    assert not second.rebuilt and second.reason == "up to date"
    assert second.entry == first.entry
    assert second.frame.equals(first.frame)
    assert first.path.stat().st_mtime_ns == mtime
    assert len(manifest_entries(tmp_path)) == 1


def test_changed_raw_data_triggers_a_rebuild_with_the_next_version(
    tmp_path: Path, synthetic: pl.DataFrame
) -> None:
    write_raw(tmp_path, "ABC", synthetic)
    first = ensure_features(tmp_path, "ABC", "a20")
    new_raw = write_raw(tmp_path, "ABC", synthetic.head(synthetic.height - 10))
    second = ensure_features(tmp_path, "ABC", "a20")
    assert second.rebuilt and second.reason == "raw data changed"
    assert second.entry["version"] == 2
    assert second.entry["source_raw_md5"] == new_raw["md5"] != first.entry["source_raw_md5"]
    assert second.frame.height == first.frame.height - 10


def test_changed_tier_definition_triggers_a_rebuild(
    tmp_path: Path, synthetic: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_raw(tmp_path, "ABC", synthetic)
    ensure_features(tmp_path, "ABC", "a20")
    monkeypatch.setattr(store, "tier_hash", lambda tier: "0123456789abcdef")
    again = ensure_features(tmp_path, "ABC", "a20")
    assert again.rebuilt and again.reason == "tier changed"
    assert again.entry["tier_hash"] == "0123456789abcdef"


def test_altered_or_missing_feature_file_is_rebuilt(tmp_path: Path, synthetic: pl.DataFrame) -> None:
    write_raw(tmp_path, "ABC", synthetic)
    first = ensure_features(tmp_path, "ABC", "a20")
    first.frame.head(5).write_parquet(first.path)
    assert ensure_features(tmp_path, "ABC", "a20").reason == "file altered"
    first.path.unlink()
    rebuilt = ensure_features(tmp_path, "ABC", "a20")
    assert rebuilt.reason == "file missing"
    assert rebuilt.frame.equals(first.frame)


def test_tiers_are_versioned_separately(tmp_path: Path, synthetic: pl.DataFrame) -> None:
    write_raw(tmp_path, "ABC", synthetic)
    a20 = ensure_features(tmp_path, "ABC", "a20")
    a50 = ensure_features(tmp_path, "ABC", "a50", force=True)
    assert a20.entry["version"] == a50.entry["version"] == 1
    assert ensure_features(tmp_path, "ABC", "a50", force=True).entry["version"] == 2
    assert len(a50.frame.columns) == 6 + 50


def test_too_short_raw_data_is_a_clear_error(tmp_path: Path, synthetic: pl.DataFrame) -> None:
    rows = tier_warmup("a20") + 59
    write_raw(tmp_path, "ABC", synthetic.head(rows))
    with pytest.raises(FeatureError, match=rf"ABC has {rows} rows; tier a20 needs at least {rows + 1}"):
        ensure_features(tmp_path, "ABC", "a20")
    assert features_path(tmp_path, "ABC", "a20") is None


def test_missing_raw_data_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fintrain data fetch XYZ"):
        ensure_features(tmp_path, "XYZ", "a20")


def test_unknown_tier_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="known tiers: a20, a50"):
        ensure_features(tmp_path, "ABC", "b7")


def test_read_features_returns_the_stored_build_or_says_how_to_build(
    tmp_path: Path, synthetic: pl.DataFrame
) -> None:
    write_raw(tmp_path, "ABC", synthetic)
    with pytest.raises(FeatureError, match="fintrain features build ABC --tier a20"):
        read_features(tmp_path, "ABC", "a20")
    built = ensure_features(tmp_path, "ABC", "a20")
    assert read_features(tmp_path, "ABC", "a20").equals(built.frame)
