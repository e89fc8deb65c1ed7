"""Feature files: ``DATA_DIR/processed/TICKER.features.TIER/<md5>.parquet`` and their manifest.

A build records the md5 of the raw version it read and the tier's hash; ``ensure_features``
reuses a stored version built from the same raw version and tier, and builds (a new version)
only when there is none, or its file is gone or altered. A training run can call it every time
at the cost of one md5 sum; a resumed run asks for the raw version it started with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fintrain.data.store import raw_dataset, raw_manifest, raw_path
from fintrain.errors import DataError, FeatureError
from fintrain.features.build import TICKER, build_features
from fintrain.features.tiers import feature_names, get_tier, tier_hash, tier_warmup
from fintrain.storage import Manifest, check_writable, md5_file, utc_now

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


def features_folder(ticker: str, tier: str) -> str:
    """The data-folder-relative folder of a ticker's feature versions of a tier."""
    return f"{PROCESSED_FOLDER}/{dataset_name(ticker, tier)}"


def features_path(data_dir: Path, ticker: str, tier: str) -> Path | None:
    """The file of the current (newest) features of ``ticker`` for ``tier``, or None."""
    manifest = processed_manifest(data_dir)
    entry = manifest.latest("dataset", dataset_name(ticker, tier))
    return None if entry is None else manifest.resolve(entry)


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


def _stale_reason(entry: dict[str, Any] | None, raw_md5: str, current_hash: str) -> str:
    """Why the newest stored version cannot be used."""
    if entry is None:
        return "new"
    if entry.get("source_raw_md5") != raw_md5:
        return "raw data changed"
    if entry.get("tier_hash") != current_hash:
        return "tier changed"
    return "file missing"


def _usable(data_dir: Path, versions: list[dict[str, Any]], raw_md5: str, current_hash: str) -> tuple[dict[str, Any] | None, str | None]:
    """The newest version built from ``raw_md5`` with the tier's hash, or why there is none."""
    for entry in reversed(versions):
        if entry.get("source_raw_md5") != raw_md5 or entry.get("tier_hash") != current_hash:
            continue
        path = Path(data_dir) / entry["path"]
        if not entry.get("kept", True) or not path.is_file():
            return None, "file missing"
        if md5_file(path) != entry["md5"]:
            return None, "file altered"
        return entry, None
    return None, _stale_reason(versions[-1] if versions else None, raw_md5, current_hash)


def ensure_features(
    data_dir: Path,
    ticker: str,
    tier: str,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    force: bool = False,
    raw_md5: str | None = None,
) -> FeatureBuild:
    """The current features of ``ticker`` for ``tier``, building them only when stale.

    A stored build is usable when its manifest entry names the raw version's md5 and the tier's
    present hash, and its file still has the md5 recorded for it. Otherwise the raw version is
    read, the tier built (warm-up dropped), the Parquet stored as a new version and its
    manifest entry appended with the next version number.

    Args:
        data_dir: the data folder (``raw/`` and ``processed/`` inside).
        ticker: the ticker symbol (its raw file must exist).
        tier: a name in ``TIERS``.
        min_rows: rows the build must leave after the warm-up (one input window).
        force: build even when the stored file is current.
        raw_md5: build from this raw version (a resumed run's) instead of the current one.

    Raises:
        ConfigError: unknown tier.
        DataError: no raw data for the ticker, or version ``raw_md5`` is gone.
        FeatureError: too few rows for the tier's warm-up plus ``min_rows``.
    """
    ticker = ticker.strip().upper()
    pinned = None if raw_md5 is None else {ticker: raw_md5}
    return ensure_features_many(data_dir, [ticker], tier, min_rows=min_rows, force=force, raw_md5s=pinned)[ticker]


def ensure_features_many(
    data_dir: Path,
    tickers: list[str],
    tier: str,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    force: bool = False,
    raw_md5s: dict[str, str] | None = None,
) -> dict[str, FeatureBuild]:
    """``ensure_features`` for several tickers, building the stale ones in one lazy pass.

    The raw files of the tickers that need a build are scanned together (``pl.scan_parquet``),
    the tier's expressions run per ticker (``.over("ticker")``, never across tickers), and each
    ticker's rows go to its own file and manifest entry. ``raw_md5s`` pins tickers to raw
    versions (a resumed run's); the others use their current version.

    Returns:
        ticker -> FeatureBuild, in the order given.
    """
    data_dir = Path(data_dir)
    get_tier(tier)
    current_hash = tier_hash(tier)
    # Each manifest is read once, not once per ticker.
    processed = processed_manifest(data_dir)
    versions: dict[str, list[dict[str, Any]]] = {}
    for entry in processed.read():
        versions.setdefault(entry["dataset"], []).append(entry)
    raw_entries = _raw_entries(data_dir, [t.strip().upper() for t in tickers], raw_md5s or {})
    builds: dict[str, FeatureBuild | None] = {}
    stale: dict[str, str] = {}  # ticker -> reason
    for ticker in (t.strip().upper() for t in tickers):
        raw_md5 = raw_entries[ticker]["md5"]
        found, reason = _usable(data_dir, versions.get(dataset_name(ticker, tier), []), raw_md5, current_hash)
        if found is not None and not force:
            path = processed.resolve(found)
            builds[ticker] = FeatureBuild(read_parquet(path), path, found, rebuilt=False, reason="up to date")
        else:
            builds[ticker] = None
            stale[ticker] = "forced" if force else reason or "new"
    pending = list(stale)
    # Chunks of tickers keep memory bounded as the universe grows: each chunk is one lazy pass,
    # written out and released before the next.
    for start in range(0, len(pending), BUILD_CHUNK_TICKERS):
        chunk = pending[start : start + BUILD_CHUNK_TICKERS]
        for ticker, frame in _build_stale(data_dir, chunk, tier, min_rows, raw_entries).items():
            builds[ticker] = _store(data_dir, ticker, tier, frame, raw_entries[ticker], stale[ticker])
    return {t: b for t, b in builds.items() if b is not None}


def _raw_entries(data_dir: Path, tickers: list[str], pinned: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each ticker's raw entry: the pinned version, else the current one."""
    manifest = raw_manifest(data_dir)
    entries = manifest.read()
    found: dict[str, dict[str, Any]] = {}
    for ticker in tickers:
        md5 = pinned.get(ticker)
        matches = [
            e for e in entries
            if e["dataset"] == raw_dataset(ticker) and (md5 is None or (e["md5"] == md5 and e.get("kept", True)))
        ]
        if not matches:
            raw_path(data_dir, ticker, md5)  # raises the store's DataError with its advice
        found[ticker] = matches[-1]
    return found


def _build_stale(
    data_dir: Path, tickers: list[str], tier: str, min_rows: int, raw_entries: dict[str, dict[str, Any]]
) -> dict[str, pl.DataFrame]:
    """Check the raw versions against their manifest entries and build their features in one pass."""
    warmup = tier_warmup(tier)
    needed = warmup + min_rows
    scans = []
    for ticker in tickers:
        entry = raw_entries[ticker]
        source = Path(data_dir) / entry["path"]
        actual = md5_file(source) if source.is_file() else "missing"
        if entry.get("md5") != actual:
            raise DataError(
                f"{source} does not match its manifest entry (md5 {actual} != "
                f"{entry.get('md5')}); run `fintrain data verify` and re-import {ticker}"
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


def _store(
    data_dir: Path, ticker: str, tier: str, frame: pl.DataFrame, raw_entry: dict[str, Any], reason: str
) -> FeatureBuild:
    """Store one ticker's features as a new version and append its manifest entry."""
    name = dataset_name(ticker, tier)
    manifest = processed_manifest(data_dir)
    manifest.read()  # a bad manifest is reported before anything is written
    check_writable(Path(data_dir) / features_folder(ticker, tier), "--data-dir")

    def new_entry(entries: list[dict[str, Any]], md5: str, path: str) -> dict[str, Any]:
        versions = [e.get("version", 0) for e in entries if e["dataset"] == name]
        return {
            "dataset": name,
            "version": max(versions, default=0) + 1,
            "ticker": ticker,
            "tier": tier,
            "tier_hash": tier_hash(tier),
            "path": path,
            "md5": md5,
            "rows": frame.height,
            "n_features": len(get_tier(tier)),
            "warmup_rows": tier_warmup(tier),
            "first_date": frame["date"][0].isoformat(),
            "last_date": frame["date"][-1].isoformat(),
            "source_raw_md5": raw_entry["md5"],
            "source_raw_path": raw_entry["path"],
            "created_at": utc_now(),
        }

    entry = manifest.store(
        features_folder(ticker, tier), lambda tmp: frame.write_parquet(tmp, statistics=True), new_entry
    ).entry
    log.info("built %s v%s (%s): %d rows", name, entry["version"], reason, frame.height)
    return FeatureBuild(frame, manifest.resolve(entry), entry, rebuilt=True, reason=reason)


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
    if path is None or not path.is_file():
        raise FeatureError(
            f"no {tier} features for {ticker} in {Path(data_dir) / PROCESSED_FOLDER}; run "
            f"`fintrain features build {ticker} --tier {tier}`"
        )
    return read_parquet(path)
