"""The raw data store: ``DATA_DIR/raw/TICKER/<md5>.parquet`` versions and their manifest.

Every import or fetch stores a new version; the ticker's current version is its newest manifest
entry. A folder in the old layout (``raw/TICKER.parquet``) still reads, and is migrated on its
first write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fintrain.config import DataConfig
from fintrain.data import sources
from fintrain.data.validate import validate_ohlcv
from fintrain.errors import DataError
from fintrain.storage import Manifest, check_writable, md5_file, utc_now

RAW_FOLDER = "raw"
MANIFEST_NAME = "manifest.json"
MANIFEST_FOLDERS = ("raw", "processed")


RAW_SUFFIX = ".OHLCV.daily"


def raw_dataset(ticker: str) -> str:
    """The manifest's dataset name of a ticker's raw series, e.g. ``SPY.OHLCV.daily``."""
    return f"{ticker}{RAW_SUFFIX}"


def raw_folder(ticker: str) -> str:
    """The data-folder-relative folder of a ticker's raw versions: ``raw/SPY``."""
    return f"{RAW_FOLDER}/{ticker}"


def raw_manifest(data_dir: Path) -> Manifest:
    """The manifest of the raw folder."""
    return Manifest(Path(data_dir) / RAW_FOLDER / MANIFEST_NAME, root=Path(data_dir))


def current_raw(data_dir: Path, ticker: str) -> dict[str, Any] | None:
    """A ticker's current raw entry (its newest version), or None when it has none."""
    return raw_manifest(data_dir).latest("dataset", raw_dataset(ticker))


def raw_path(data_dir: Path, ticker: str, md5: str | None = None) -> Path:
    """The file of a ticker's raw version ``md5`` (default: the current one).

    Raises:
        DataError: the ticker has no such version.
    """
    manifest = raw_manifest(data_dir)
    entry = current_raw(data_dir, ticker) if md5 is None else manifest.find(raw_dataset(ticker), md5)
    if entry is None:
        raise _no_raw(data_dir, ticker, md5)
    return manifest.resolve(entry)


def _no_raw(data_dir: Path, ticker: str, md5: str | None) -> DataError:
    if md5 is not None:
        return DataError(
            f"version {md5} of {ticker} is gone from {Path(data_dir) / RAW_FOLDER} (pruned or "
            f"never stored here); `fintrain data versions {ticker}` lists the versions kept"
        )
    return DataError(
        f"no raw data for {ticker} in {Path(data_dir) / RAW_FOLDER}; run "
        f"`fintrain data fetch {ticker}` or `fintrain data import FILE --ticker {ticker}`"
    )


def save_raw(
    data_dir: Path, ticker: str, raw: sources.RawSeries, *, name: str, min_rows: int
) -> dict[str, Any]:
    """Validate a source's frame, store it as a new version and append its manifest entry."""
    clean = validate_ohlcv(raw.frame, name=name, min_rows=min_rows)
    data_dir = Path(data_dir)
    manifest = raw_manifest(data_dir)
    manifest.read()  # a bad manifest is reported before anything is written
    check_writable(data_dir / raw_folder(ticker), "--data-dir")
    frame = clean.frame
    dataset = raw_dataset(ticker)

    def new_entry(entries: list[dict[str, Any]], md5: str, path: str) -> dict[str, Any]:
        versions = [e.get("version", 0) for e in entries if e["dataset"] == dataset]
        return {
            "dataset": dataset,
            "version": max(versions, default=0) + 1,
            "ticker": ticker,
            "path": path,
            "md5": md5,
            "rows": frame.height,
            "first_date": frame["date"][0].isoformat(),
            "last_date": frame["date"][-1].isoformat(),
            "source": raw.source,
            "adjusted": raw.adjusted or clean.adjusted,
            "created_at": utc_now(),
        }

    return manifest.store(
        raw_folder(ticker), lambda tmp: frame.write_parquet(tmp, statistics=True), new_entry
    ).entry


def fetch(data_dir: Path, cfg: DataConfig, ticker: str | None = None) -> dict[str, Any]:
    """Fetch one ticker (default: ``cfg.ticker``) from ``cfg.source``, validate, store.

    Returns:
        The new manifest entry.
    """
    ticker = ticker or cfg.ticker
    if cfg.source == "sample":
        raw = sources.fetch_sample(ticker, cfg.start, cfg.end)
    else:
        raw = sources.fetch_yahoo(
            ticker, cfg.start, cfg.end, retries=cfg.retries, backoff_s=cfg.backoff_s
        )
    return save_raw(data_dir, ticker, raw, name=f"{ticker} from {cfg.source}", min_rows=cfg.min_rows)


def import_file(
    data_dir: Path, file: Path, ticker: str, min_rows: int = 250, adjusted: bool = False
) -> dict[str, Any]:
    """Import a vendor's CSV or Parquet file as ``ticker``; return the manifest entry.

    ``adjusted`` declares that the file's prices are already split- and dividend-adjusted; a
    file with an adjusted-close column is adjusted on import either way.
    """
    file = Path(file)
    frame = sources.read_table(file)
    raw = sources.RawSeries(frame=frame, source=f"import:{file.name}", adjusted=adjusted)
    return save_raw(data_dir, ticker, raw, name=file.name, min_rows=min_rows)


def read_raw(data_dir: Path, ticker: str, md5: str | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A ticker's stored OHLCV and its manifest entry: version ``md5``, default the current one."""
    manifest = raw_manifest(data_dir)
    entry = current_raw(data_dir, ticker) if md5 is None else manifest.find(raw_dataset(ticker), md5)
    if entry is None or not manifest.resolve(entry).is_file():
        raise _no_raw(data_dir, ticker, md5)
    return pl.read_parquet(manifest.resolve(entry)), entry


def manifests(data_dir: Path) -> Iterator[Manifest]:
    """Every manifest under the data folder (raw, then processed)."""
    for folder in MANIFEST_FOLDERS:
        yield Manifest(Path(data_dir) / folder / MANIFEST_NAME, root=Path(data_dir))


def list_entries(data_dir: Path) -> list[dict[str, Any]]:
    """The current entry of every file in every manifest."""
    return [entry for manifest in manifests(data_dir) for entry in manifest.current()]


@dataclass(frozen=True)
class VerifyResult:
    """One file's check: ``status`` is OK, MISMATCH, MISSING or UNTRACKED.

    UNTRACKED is a file no manifest entry names (left by a crash before its entry was
    appended, for instance): reported, but not a failure.
    """

    path: str
    dataset: str
    expected_md5: str
    actual_md5: str | None
    status: str

    @property
    def failed(self) -> bool:
        """True for a file that does not match its manifest."""
        return self.status in ("MISMATCH", "MISSING")


def _checked_entries(manifest: Manifest) -> list[dict[str, Any]]:
    """The entries whose file should exist: every kept version (old layout: each path's newest)."""
    entries = manifest.read()
    if manifest.schema_version == 1:
        latest = {e["path"]: e for e in entries}
        return list(latest.values())
    by_path: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.get("kept", True):
            by_path[entry["path"]] = entry
    return list(by_path.values())


def verify(data_dir: Path) -> list[VerifyResult]:
    """Recompute the md5 of every stored version, and report files no entry names."""
    data_dir = Path(data_dir)
    results = []
    for manifest in manifests(data_dir):
        for entry in _checked_entries(manifest):
            path = manifest.resolve(entry)
            actual = md5_file(path) if path.is_file() else None
            status = "MISSING" if actual is None else "OK" if actual == entry["md5"] else "MISMATCH"
            results.append(VerifyResult(entry["path"], entry["dataset"], entry["md5"], actual, status))
        folder = manifest.path.parent
        if not folder.is_dir():
            continue
        tracked = manifest.tracked_paths()
        own = {manifest.path.name, manifest.path.name + ".lock"}
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(data_dir).as_posix()
            if path.is_file() and relative not in tracked and not (path.parent == folder and path.name in own):
                results.append(VerifyResult(relative, "", "", md5_file(path), "UNTRACKED"))
    return results


def ticker_of(entry: dict[str, Any]) -> str:
    """The ticker a raw or feature entry belongs to (``BRK.B.OHLCV.daily`` -> ``BRK.B``)."""
    if entry.get("ticker"):
        return entry["ticker"]
    return entry["dataset"].removesuffix(RAW_SUFFIX).split(".features.", 1)[0]


def versions(data_dir: Path, ticker: str) -> list[dict[str, Any]]:
    """Every stored version of a ticker's raw series and feature tiers, oldest first per dataset.

    Each entry gains ``current`` (it is its dataset's newest) and ``on_disk`` (its file is kept).
    """
    rows = []
    for manifest in manifests(data_dir):
        entries = [e for e in manifest.read() if ticker_of(e) == ticker]
        newest = {e["dataset"]: i for i, e in enumerate(entries)}
        for index, entry in enumerate(entries):
            on_disk = entry.get("kept", True) and manifest.resolve(entry).is_file()
            rows.append({**entry, "current": newest[entry["dataset"]] == index, "on_disk": on_disk})
    return rows


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` deleted (or would delete) and what it kept because runs use it."""

    removed: list[dict[str, Any]]
    in_use: list[dict[str, Any]]
    freed_bytes: int
    dry_run: bool


def prune(
    data_dir: Path,
    keep: int,
    used_md5s: set[str],
    protected_tickers: set[str] = frozenset(),
    *,
    dry_run: bool = False,
) -> PruneResult:
    """Delete old versions: all but each dataset's ``keep`` newest, except those runs use.

    Args:
        data_dir: the data folder.
        keep: newest versions kept per dataset (at least 1: the current one is never deleted).
        used_md5s: md5 of every version a run trained on; these are never deleted.
        protected_tickers: tickers of runs that did not record their versions; none of their
            versions is deleted.
        dry_run: report without deleting.

    The manifest marks a pruned version ``"kept": false`` (its history stays) before the file
    is deleted, so a crash in between leaves a file too many, never one too few.
    """
    if keep < 1:
        raise DataError(f"--keep {keep}: at least the current version must be kept (1 or more)")
    data_dir = Path(data_dir)
    removed: list[dict[str, Any]] = []
    in_use: list[dict[str, Any]] = []
    freed = 0
    for manifest in manifests(data_dir):
        if not manifest.path.is_file():
            continue
        manifest.read()
        with contextlib.nullcontext() if dry_run else manifest.locked():
            entries = manifest.read() if dry_run else manifest.migrate()
            doomed = _doomed(manifest, entries, keep, used_md5s, protected_tickers, in_use)
            if not doomed:
                continue
            for path in doomed:
                entry = next(e for e in reversed(entries) if e["path"] == path)
                size = manifest.resolve(entry).stat().st_size
                freed += size
                removed.append({**entry, "bytes": size})
            if dry_run:
                continue
            manifest.rewrite([{**e, "kept": False} if e["path"] in doomed else e for e in entries])
            for path in doomed:
                (data_dir / path).unlink(missing_ok=True)
    return PruneResult(removed, in_use, freed, dry_run)


def _doomed(
    manifest: Manifest,
    entries: list[dict[str, Any]],
    keep: int,
    used_md5s: set[str],
    protected_tickers: set[str],
    in_use: list[dict[str, Any]],
) -> set[str]:
    """Paths of the versions to delete; appends the old versions runs still use to ``in_use``."""
    doomed: set[str] = set()
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_dataset.setdefault(entry["dataset"], []).append(entry)
    for dataset_entries in by_dataset.values():
        # Newest first, one row per file: a version stored twice counts once, at its newest.
        files: dict[str, dict[str, Any]] = {}
        for entry in reversed(dataset_entries):
            files.setdefault(entry["path"], entry)
        stored = [e for e in files.values() if e.get("kept", True) and manifest.resolve(e).is_file()]
        for entry in stored[keep:]:
            if entry["md5"] in used_md5s or ticker_of(entry) in protected_tickers:
                in_use.append(entry)
            else:
                doomed.add(entry["path"])
    return doomed
