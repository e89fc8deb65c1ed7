"""From a ticker to window tensors: fetch if missing, build features if missing or stale."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch

from fintrain.config import RunConfig
from fintrain.data import fetch, raw_manifest, raw_path
from fintrain.dataset import Splits, build_dataset
from fintrain.features import ensure_features, feature_names

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything a run needs from the data side."""

    frame: pl.DataFrame
    splits: Splits
    feature_columns: list[str]
    raw_entry: dict[str, Any]
    feature_entry: dict[str, Any]

    @property
    def n_features(self) -> int:
        """Channels the model sees."""
        return len(self.feature_columns)

    def data_md5(self) -> dict[str, str]:
        """The md5 of the raw and feature files this run trains on."""
        return {"raw": self.raw_entry["md5"], "features": self.feature_entry["md5"]}


def ensure_raw(data_dir: Path, cfg: RunConfig, notify: Callable[[str], None]) -> dict[str, Any]:
    """The current raw entry for the run's ticker, fetching it first when absent."""
    ticker = cfg.data.ticker
    path = raw_path(data_dir, ticker)
    entry = raw_manifest(data_dir).latest("path", path.relative_to(data_dir).as_posix())
    if entry is None or not path.exists():
        notify(f"no raw data for {ticker}: fetching it from {cfg.data.source}")
        entry = fetch(data_dir, cfg.data)
    return entry


def prepare_data(
    data_dir: Path,
    cfg: RunConfig,
    device: torch.device | str = "cpu",
    notify: Callable[[str], None] = log.info,
) -> Prepared:
    """Raw data, then the tier's features (rebuilt when stale), then the dataset on ``device``."""
    raw_entry = ensure_raw(Path(data_dir), cfg, notify)
    build = ensure_features(Path(data_dir), cfg.data.ticker, cfg.features.tier)
    if build.rebuilt:
        notify(f"built {cfg.features.tier} features for {cfg.data.ticker}: {build.path.name}")
    columns = feature_names(cfg.features.tier)
    splits = build_dataset(build.frame, cfg.target, cfg.split, feature_columns=columns, device=device)
    return Prepared(
        frame=build.frame,
        splits=splits,
        feature_columns=columns,
        raw_entry=raw_entry,
        feature_entry=build.entry,
    )
