"""Daily OHLCV: sources, validation, the raw Parquet store and its manifest."""

from fintrain.data.sources import SAMPLE_TICKERS, RawSeries, fetch_sample, fetch_yahoo, read_table
from fintrain.data.store import (
    PruneResult,
    VerifyResult,
    current_raw,
    fetch,
    import_file,
    list_entries,
    raw_dataset,
    raw_manifest,
    raw_path,
    prune,
    read_raw,
    save_raw,
    ticker_of,
    verify,
    versions,
)
from fintrain.data.validate import CleanOHLCV, DataValidationError, validate_ohlcv

__all__ = [
    "SAMPLE_TICKERS",
    "CleanOHLCV",
    "DataValidationError",
    "RawSeries",
    "PruneResult",
    "VerifyResult",
    "current_raw",
    "fetch",
    "fetch_sample",
    "fetch_yahoo",
    "import_file",
    "list_entries",
    "raw_dataset",
    "raw_manifest",
    "raw_path",
    "prune",
    "read_raw",
    "read_table",
    "save_raw",
    "ticker_of",
    "validate_ohlcv",
    "verify",
    "versions",
]
