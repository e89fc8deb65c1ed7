"""The raw data store: ``DATA_DIR/raw/TICKER.parquet`` files and their manifest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fintrain.config import DataConfig
from fintrain.data import sources
from fintrain.data.validate import validate_ohlcv
from fintrain.errors import DataError
from fintrain.storage import Manifest, atomic_path, md5_file, utc_now

RAW_FOLDER = "raw"
MANIFEST_NAME = "manifest.json"
MANIFEST_FOLDERS = ("raw", "processed")


def raw_path(data_dir: Path, ticker: str) -> Path:
    """Where a ticker's raw OHLCV lives."""
    return Path(data_dir) / RAW_FOLDER / f"{ticker}.parquet"


def raw_manifest(data_dir: Path) -> Manifest:
    """The manifest of the raw folder."""
    return Manifest(Path(data_dir) / RAW_FOLDER / MANIFEST_NAME, root=Path(data_dir))


def save_raw(
    data_dir: Path, ticker: str, raw: sources.RawSeries, *, name: str, min_rows: int
) -> dict[str, Any]:
    """Validate a source's frame, write it atomically and append its manifest entry."""
    clean = validate_ohlcv(raw.frame, name=name, min_rows=min_rows)
    path = raw_path(data_dir, ticker)
    with atomic_path(path) as tmp:
        clean.frame.write_parquet(tmp, statistics=True)
    frame = clean.frame
    entry = {
        "dataset": f"{ticker}.OHLCV.daily",
        "path": path.relative_to(data_dir).as_posix(),
        "md5": md5_file(path),
        "rows": frame.height,
        "first_date": frame["date"][0].isoformat(),
        "last_date": frame["date"][-1].isoformat(),
        "source": raw.source,
        "adjusted": raw.adjusted or clean.adjusted,
        "created_at": utc_now(),
    }
    return raw_manifest(data_dir).append(entry)


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


def read_raw(data_dir: Path, ticker: str) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A ticker's stored OHLCV and its current manifest entry."""
    path = raw_path(data_dir, ticker)
    entry = raw_manifest(data_dir).latest("path", path.relative_to(data_dir).as_posix())
    if entry is None or not path.exists():
        raise DataError(
            f"no raw data for {ticker} in {Path(data_dir) / RAW_FOLDER}; run "
            f"`fintrain data fetch {ticker}` or `fintrain data import FILE --ticker {ticker}`"
        )
    return pl.read_parquet(path), entry


def manifests(data_dir: Path) -> Iterator[Manifest]:
    """Every manifest under the data folder (raw, then processed)."""
    for folder in MANIFEST_FOLDERS:
        yield Manifest(Path(data_dir) / folder / MANIFEST_NAME, root=Path(data_dir))


def list_entries(data_dir: Path) -> list[dict[str, Any]]:
    """The current entry of every file in every manifest."""
    return [entry for manifest in manifests(data_dir) for entry in manifest.current()]


@dataclass(frozen=True)
class VerifyResult:
    """One file's check: ``status`` is OK, MISMATCH or MISSING."""

    path: str
    dataset: str
    expected_md5: str
    actual_md5: str | None
    status: str


def verify(data_dir: Path) -> list[VerifyResult]:
    """Recompute the md5 of every current manifest entry."""
    results = []
    for manifest in manifests(data_dir):
        for entry in manifest.current():
            path = manifest.resolve(entry)
            actual = md5_file(path) if path.is_file() else None
            status = "MISSING" if actual is None else "OK" if actual == entry["md5"] else "MISMATCH"
            results.append(
                VerifyResult(entry["path"], entry.get("dataset", ""), entry["md5"], actual, status)
            )
    return results
