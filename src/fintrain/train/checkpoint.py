"""Checkpoints: atomic writes of plain dicts that ``torch.load(weights_only=True)`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fintrain.errors import CheckpointError
from fintrain.storage import atomic_path

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a crash leaves the previous one intact."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU (tensors, dicts, lists and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise CheckpointError(f"could not read checkpoint {path}: {exc}") from exc
