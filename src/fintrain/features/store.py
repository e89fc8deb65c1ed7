"""Feature files: ``DATA_DIR/processed/TICKER.features.TIER.parquet`` and their manifest.

A build records the md5 of the raw file it read and the tier's hash; ``ensure_features``
rebuilds only when either has changed (or the stored file is gone or altered), so a training
run can call it every time at the cost of two md5 sums.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fintrain.data.store import raw_manifest, raw_path, read_raw
from fintrain.errors import DataError, FeatureError
from fintrain.features.build import TICKER, build_features
from fintrain.features.tiers import feature_names, get_tier, tier_hash, tier_warmup
from fintrain.storage import Manifest, atomic_path, md5_file, utc_now

log = logging.getLogger(__name__)

PROCESSED_FOLDER = "processed"
MANIFEST_NAME = "manifest.json"
# A build must leave at least one input window of this many rows (SplitConfig's default).
DEFAULT_MIN_ROWS = 60
# Tickers built together in one lazy pass (see ensure_features_many).
BUILD_CHUNK_TICKERS = 50


def dataset_name(ticker: str, tier: str) -> str:
    """The manifest's dataset name of a feature file, e.g. ``SPY.features.a20``."""
    return f"{ticker}.features.{tier}"


def features_path(data_dir: Path, ticker: str, tier: str) -> Path:
    """Where a ticker's features of a tier live."""
    return Path(data_dir) / PROCESSED_FOLDER / f"{dataset_name(ticker, tier)}.parquet"


def processed_manifest(data_dir: Path) -> Manifest:
    """The manifest of the processed folder (entry paths relative to the data folder)."""
    return Manifest(Path(data_dir) / PROCESSED_FOLDER / MANIFEST_NAME, root=Path(data_dir))


@dataclass(frozen=True)
class FeatureBuild:
    """A tier's features for one ticker, and whether this call had to build them.

    Attributes:
        frame: date, open, high, low, close, volume and the feature columns.
        path: the Parquet file.
        entry: its manifest entry (``md5``, ``source_raw_md5``, ``tier_hash``, ``version``, ...).
        rebuilt: True when this call built the file, False when the stored one was current.
        reason: why it was (re)built, or why not: "new", "raw data changed", "tier changed",
            "file missing", "file altered", "forced" or "up to date".
    """

    frame: pl.DataFrame
    path: Path
    entry: dict[str, Any]
    rebuilt: bool
    reason: str

    @property
    def feature_columns(self) -> list[str]:
        """The tier's feature column names, in order."""
        return feature_names(self.entry["tier"])


def _stale_reason(
    entry: dict[str, Any] | None, path: Path, raw_md5: str, current_hash: str
) -> str | None:
    if entry is None:
        return "new"
    if entry.get("source_raw_md5") != raw_md5:
        return "raw data changed"
    if entry.get("tier_hash") != current_hash:
        return "tier changed"
    if not path.is_file():
        return "file missing"
    if md5_file(path) != entry.get("md5"):
        return "file altered"
    return None


def ensure_features(
    data_dir: Path,
    ticker: str,
    tier: str,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    force: bool = False,
) -> FeatureBuild:
    """The current features of ``ticker`` for ``tier``, building them only when stale.

    A stored build is current when its manifest entry names the raw file's md5 and the tier's
    present hash, and the file still has the md5 recorded for it. Otherwise the raw file is
    read, the tier built (warm-up dropped), the Parquet written atomically and a new manifest
    entry appended with the next version number.

    Args:
        data_dir: the data folder (``raw/`` and ``processed/`` inside).
        ticker: the ticker symbol (its raw file must exist).
        tier: a name in ``TIERS``.
        min_rows: rows the build must leave after the warm-up (one input window).
        force: build even when the stored file is current.

    Raises:
        ConfigError: unknown tier.
        DataError: no raw data for the ticker.
        FeatureError: too few rows for the tier's warm-up plus ``min_rows``.
    """
    ticker = ticker.strip().upper()
    return ensure_features_many(data_dir, [ticker], tier, min_rows=min_rows, force=force)[ticker]


def ensure_features_many(
    data_dir: Path,
    tickers: list[str],
    tier: str,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    force: bool = False,
) -> dict[str, FeatureBuild]:
    """``ensure_features`` for several tickers, building the stale ones in one lazy pass.

    The raw files of the tickers that need a build are scanned together (``pl.scan_parquet``),
    the tier's expressions run per ticker (``.over("ticker")``, never across tickers), and each
    ticker's rows go to its own file and manifest entry.

    Returns:
        ticker -> FeatureBuild, in the order given.
    """
    data_dir = Path(data_dir)
    get_tier(tier)
    current_hash = tier_hash(tier)
    # Each manifest is read once, not once per ticker.
    latest = {e.get("dataset"): e for e in processed_manifest(data_dir).read()}
    raw_entries = {e.get("path"): e for e in raw_manifest(data_dir).read()}
    builds: dict[str, FeatureBuild | None] = {}
    stale: dict[str, tuple[str, str]] = {}  # ticker -> (raw md5, reason)
    for ticker in (t.strip().upper() for t in tickers):
        path = features_path(data_dir, ticker, tier)
        source = raw_path(data_dir, ticker)
        if not source.is_file():
            read_raw(data_dir, ticker)  # raises the store's DataError with its advice
        raw_md5 = md5_file(source)
        entry = latest.get(dataset_name(ticker, tier))
        reason = "forced" if force else _stale_reason(entry, path, raw_md5, current_hash)
        if reason is None and entry is not None:
            builds[ticker] = FeatureBuild(read_parquet(path), path, entry, rebuilt=False, reason="up to date")
        else:
            builds[ticker] = None
            stale[ticker] = (raw_md5, reason or "new")
    pending = list(stale)
    # Chunks of tickers keep memory bounded as the universe grows: each chunk is one lazy pass,
    # written out and released before the next.
    for start in range(0, len(pending), BUILD_CHUNK_TICKERS):
        chunk = pending[start : start + BUILD_CHUNK_TICKERS]
        for ticker, frame in _build_stale(data_dir, chunk, tier, min_rows, raw_entries).items():
            raw_md5, reason = stale[ticker]
            builds[ticker] = _store(data_dir, ticker, tier, frame, raw_md5, reason)
    return {t: b for t, b in builds.items() if b is not None}


def _build_stale(
    data_dir: Path, tickers: list[str], tier: str, min_rows: int, raw_entries: dict[str, dict[str, Any]]
) -> dict[str, pl.DataFrame]:
    """Check the raw files against their manifest entries and build their features in one pass."""
    warmup = tier_warmup(tier)
    needed = warmup + min_rows
    scans = []
    for ticker in tickers:
        source = raw_path(data_dir, ticker)
        entry = raw_entries.get(source.relative_to(data_dir).as_posix())
        actual = md5_file(source)
        if entry is None or entry.get("md5") != actual:
            raise DataError(
                f"{source} does not match its manifest entry (md5 {actual} != "
                f"{(entry or {}).get('md5')}); run `fintrain data verify` and re-import {ticker}"
            )
        if entry["rows"] < needed:
            raise FeatureError(
                f"{ticker} has {entry['rows']} rows; tier {tier} needs at least {needed} "
                f"({warmup} warm-up rows + {min_rows} for one input window). Fetch a longer "
                "history or use a shorter tier"
            )
        scans.append(pl.scan_parquet(source))
    if len(tickers) == 1:
        return {tickers[0]: build_features(scans[0], tier)}
    pooled = pl.concat(
        [scan.with_columns(pl.lit(t).alias(TICKER)) for t, scan in zip(tickers, scans)], how="vertical"
    )
    built = build_features(pooled, tier)
    return {
        key[0]: part.drop(TICKER)
        for key, part in built.partition_by(TICKER, as_dict=True, maintain_order=True).items()
    }


def _store(data_dir: Path, ticker: str, tier: str, frame: pl.DataFrame, raw_md5: str, reason: str) -> FeatureBuild:
    """Write one ticker's features atomically and append its manifest entry."""
    path = features_path(data_dir, ticker, tier)
    name = dataset_name(ticker, tier)
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp, statistics=True)
    md5 = md5_file(path)

    def new_entry(entries: list[dict[str, Any]]) -> dict[str, Any]:
        versions = [e.get("version", 0) for e in entries if e.get("dataset") == name]
        return {
            "dataset": name,
            "version": max(versions, default=0) + 1,
            "ticker": ticker,
            "tier": tier,
            "tier_hash": tier_hash(tier),
            "path": path.relative_to(data_dir).as_posix(),
            "md5": md5,
            "rows": frame.height,
            "n_features": len(get_tier(tier)),
            "warmup_rows": tier_warmup(tier),
            "first_date": frame["date"][0].isoformat(),
            "last_date": frame["date"][-1].isoformat(),
            "source_raw_md5": raw_md5,
            "source_raw_path": raw_path(data_dir, ticker).relative_to(data_dir).as_posix(),
            "created_at": utc_now(),
        }

    entry = processed_manifest(data_dir).append(new_entry)
    log.info("built %s v%s (%s): %d rows", name, entry["version"], reason, frame.height)
    return FeatureBuild(frame, path, entry, rebuilt=True, reason=reason)


def read_parquet(path: Path) -> pl.DataFrame:
    """A feature file; an unreadable one is a DataError."""
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"cannot read {path} ({exc}); rebuild it with `fintrain features build`") from exc


def read_features(data_dir: Path, ticker: str, tier: str) -> pl.DataFrame:
    """The stored features of ``ticker`` for ``tier``, as built last (no staleness check).

    Raises:
        ConfigError: unknown tier.
        FeatureError: nothing has been built for this ticker and tier.
    """
    get_tier(tier)
    ticker = ticker.strip().upper()
    path = features_path(data_dir, ticker, tier)
    if not path.is_file():
        raise FeatureError(
            f"no {tier} features for {ticker} in {path.parent}; run "
            f"`fintrain features build {ticker} --tier {tier}`"
        )
    return read_parquet(path)
