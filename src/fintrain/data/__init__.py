"""Daily OHLCV: sources, validation, the raw Parquet store and its manifest."""

from fintrain.data.sources import SAMPLE_TICKERS, RawSeries, fetch_sample, fetch_yahoo, read_table
from fintrain.data.store import (
    VerifyResult,
    fetch,
    import_file,
    list_entries,
    raw_manifest,
    raw_path,
    read_raw,
    save_raw,
    verify,
)
from fintrain.data.validate import CleanOHLCV, DataValidationError, validate_ohlcv

__all__ = [
    "SAMPLE_TICKERS",
    "CleanOHLCV",
    "DataValidationError",
    "RawSeries",
    "VerifyResult",
    "fetch",
    "fetch_sample",
    "fetch_yahoo",
    "import_file",
    "list_entries",
    "raw_manifest",
    "raw_path",
    "read_raw",
    "read_table",
    "save_raw",
    "validate_ohlcv",
    "verify",
]
