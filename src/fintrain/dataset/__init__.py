"""From a feature frame to tensors: targets, chronological splits, scaling and windows."""

from fintrain.dataset.scaling import Scaler
from fintrain.dataset.splits import (
    Boundaries,
    Splits,
    build_dataset,
    purge_gap,
    split_dates,
)
from fintrain.dataset.targets import TARGET, is_classification, target_expr
from fintrain.dataset.windows import WindowSet, epoch_generator

__all__ = [
    "TARGET",
    "Boundaries",
    "Scaler",
    "Splits",
    "WindowSet",
    "build_dataset",
    "epoch_generator",
    "is_classification",
    "purge_gap",
    "split_dates",
    "target_expr",
]
