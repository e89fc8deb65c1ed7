"""Records shaped like the ones fit() sends, and the facts of a small run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fintrain.tracking import RunInfo


class Records:
    """Builders for each record kind, with values a small run would send (epochs 0-based)."""

    @staticmethod
    def train(step: int, loss: float, *, epoch: int = 0, time_s: float | None = None,
              temp_c: float | None = 71.5) -> dict[str, Any]:
        return {
            "kind": "train", "epoch": epoch, "step": step, "train/loss": loss, "lr": 3e-4,
            "throughput": 1500.0, "thermal/temp_c": temp_c, "thermal/paused": 0,
            "time_s": step * 0.5 if time_s is None else time_s,
        }

    @staticmethod
    def epoch(epoch: int, step: int, *, val_loss: float = 0.61, auc: float = 0.57) -> dict[str, Any]:
        return {
            "kind": "epoch", "epoch": epoch, "step": step, "train/loss": 0.64, "val/loss": val_loss,
            "val/auc": auc, "val/accuracy": 0.66, "val/brier": 0.21, "val/log_loss": 0.62,
            "val/pos_rate": 0.24, "best/auc": auc, "best_epoch": epoch, "time_s": step * 0.5,
        }

    @staticmethod
    def status(**overrides: Any) -> dict[str, Any]:
        record = {
            "kind": "status", "state": "running", "paused_s": 0.0, "thermal/temp_c": 71.5,
            "thermal/temp_max_c": 74.0, "thermal/hottest_c": 80.2, "thermal/band": "acceptable",
            "thermal/trend": "steady", "memory_bytes": 3 * 1024**3 // 2,
        }
        record.update({k.replace("__", "/"): v for k, v in overrides.items()})
        return record

    @staticmethod
    def event(event: str, step: int, message: str, **extra: Any) -> dict[str, Any]:
        return {"kind": "event", "event": event, "epoch": 0, "step": step, "message": message, **extra}

    @staticmethod
    def final() -> dict[str, Any]:
        return {
            "kind": "final",
            "test": {"auc": 0.5612, "accuracy": 0.7, "brier": 0.2, "log_loss": 0.6, "pos_rate": 0.25},
            "baselines": {"base_rate": {"auc": 0.5, "brier": 0.19}, "logistic": {"auc": 0.5301, "brier": 0.2}},
            "best_epoch": 1,
            "steps": 30,
        }


@pytest.fixture
def rec() -> type[Records]:
    """The record builders."""
    return Records


@pytest.fixture
def info(tmp_path: Path) -> RunInfo:
    """A threshold run of 3 epochs x 10 steps."""
    return RunInfo(
        run_name="20261128-a20-2m",
        run_dir=tmp_path / "runs" / "20261128-a20-2m",
        device="cpu",
        ticker="SPY",
        tier="a20",
        budget="2m",
        params=2_013_441,
        task="threshold",
        epochs=3,
        steps_per_epoch=10,
        max_steps=None,
        primary_metric="auc",
    )
