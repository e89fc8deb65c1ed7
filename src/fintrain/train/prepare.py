"""From tickers to window tensors: fetch if missing, build features if missing or stale."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch

from fintrain.config import RunConfig
from fintrain.data import current_raw, fetch, raw_dataset, raw_manifest
from fintrain.dataset import Splits, build_dataset
from fintrain.errors import ConfigError, DataError
from fintrain.features import TIERS, ensure_features_many, feature_names
from fintrain.model import parse_budget

log = logging.getLogger(__name__)

TICKER = "ticker"


@dataclass
class Prepared:
    """Everything a run needs from the data side (one ticker or several)."""

    frame: pl.DataFrame
    splits: Splits
    feature_columns: list[str]
    raw_entries: dict[str, dict[str, Any]]
    feature_entries: dict[str, dict[str, Any]]

    @property
    def n_features(self) -> int:
        """Channels the model sees."""
        return len(self.feature_columns)

    @property
    def tickers(self) -> list[str]:
        """The tickers trained on, in the order given."""
        return list(self.raw_entries)

    def versions(self) -> dict[str, dict[str, str]]:
        """The md5 of each ticker's raw and feature version, and where the raw version came from
        (its manifest ``source``: ``yahoo``, ``sample``, ``import:FILE``), for the run's ``data.json``."""
        return {
            "raw": {t: e["md5"] for t, e in self.raw_entries.items()},
            "features": {t: e["md5"] for t, e in self.feature_entries.items()},
            "source": {t: str(e.get("source", "?")) for t, e in self.raw_entries.items()},
        }

    def data_md5(self) -> dict[str, Any]:
        """The md5 of the raw and feature files: strings for one ticker, ticker -> md5 for several."""
        raw = {t: e["md5"] for t, e in self.raw_entries.items()}
        features = {t: e["md5"] for t, e in self.feature_entries.items()}
        if len(raw) == 1:
            return {"raw": next(iter(raw.values())), "features": next(iter(features.values()))}
        return {"raw": raw, "features": features}


def ensure_raw(
    data_dir: Path, cfg: RunConfig, ticker: str, notify: Callable[[str], None], md5: str | None = None
) -> dict[str, Any]:
    """The current raw entry of a ticker, fetching it first when absent; or its version ``md5``.

    Raises:
        DataError: version ``md5`` is gone (pruned, or another data folder), naming it.
    """
    if md5 is not None:
        entry = raw_manifest(data_dir).find(raw_dataset(ticker), md5)
        if entry is None or not (Path(data_dir) / entry["path"]).is_file():
            raise DataError(
                f"the {ticker} data this run started with (raw md5 {md5}) is gone from {data_dir}; "
                f"`fintrain data versions {ticker}` lists the versions kept. Import that data again, or "
                "start a new run"
            )
        return entry
    entry = current_raw(data_dir, ticker)
    if entry is None or not (Path(data_dir) / entry["path"]).is_file():
        notify(f"no raw data for {ticker}: fetching it from {cfg.data.source}")
        entry = fetch(data_dir, cfg.data, ticker)
    return entry


def prepare_data(
    data_dir: Path,
    cfg: RunConfig,
    device: torch.device | str = "cpu",
    notify: Callable[[str], None] = log.info,
    *,
    raw_md5s: dict[str, str] | None = None,
) -> Prepared:
    """Raw data, then the tier's features (rebuilt when stale), then the dataset on ``device``.

    Several tickers are pooled into one frame with a ``ticker`` column: the dataset cuts
    windows within each ticker, splits all of them on the same dates and scales them with
    statistics of all tickers' training rows. ``raw_md5s`` pins tickers to raw versions (a
    resumed run's), which need not be the current ones.
    """
    data_dir = Path(data_dir)
    raw_entries: dict[str, dict[str, Any]] = {}
    feature_entries: dict[str, dict[str, Any]] = {}
    for ticker in cfg.data.tickers:
        raw_entries[ticker] = ensure_raw(data_dir, cfg, ticker, notify, (raw_md5s or {}).get(ticker))
    pinned = {t: e["md5"] for t, e in raw_entries.items()} if raw_md5s else None
    builds = ensure_features_many(
        data_dir, cfg.data.tickers, cfg.features.tier, min_rows=cfg.split.context_len, raw_md5s=pinned
    )
    frames: list[pl.DataFrame] = []
    for ticker, build in builds.items():
        if build.rebuilt:
            notify(f"built {cfg.features.tier} features for {ticker}: {build.path.name}")
        feature_entries[ticker] = build.entry
        frames.append(build.frame)
    if len(frames) == 1:
        frame = frames[0]
    else:
        frame = pl.concat(
            [f.with_columns(pl.lit(t).alias(TICKER)) for t, f in zip(cfg.data.tickers, frames)],
            how="vertical_relaxed",
        )
    columns = feature_names(cfg.features.tier)
    splits = build_dataset(frame, cfg.target, cfg.split, feature_columns=columns, device=device)
    return Prepared(frame, splits, columns, raw_entries, feature_entries)


def check_names(cfg: RunConfig) -> None:
    """Reject an unknown budget or tier before any data is fetched or built."""
    parse_budget(cfg.model.budget)
    if cfg.features.tier not in TIERS:
        raise ConfigError(f"unknown tier {cfg.features.tier!r}; known tiers: {', '.join(TIERS)}")
