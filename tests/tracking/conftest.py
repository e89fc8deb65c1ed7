"""Records like the ones fit() sends, and the facts of a small run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fintrain.records import EpochRecord, Event, EventRecord, FinalRecord, StatusRecord, TrainRecord
from fintrain.tracking import RunInfo


class Records:
    """Builders for each record kind, with values a small run would send (epochs numbered from 1)."""

    @staticmethod
    def train(step: int, loss: float, *, epoch: int = 1, time_s: float | None = None,
              temp_c: float | None = 71.5) -> TrainRecord:
        return TrainRecord(epoch, step, loss, 3e-4, 1500.0, temp_c, step * 0.5 if time_s is None else time_s)

    @staticmethod
    def epoch(epoch: int, step: int, *, val_loss: float = 0.61, auc: float = 0.57) -> EpochRecord:
        val = {"loss": val_loss, "auc": auc, "accuracy": 0.66, "brier": 0.21, "log_loss": 0.62, "pos_rate": 0.24}
        return EpochRecord(epoch, step, 0.64, val, "auc", auc, epoch, step * 0.5)

    @staticmethod
    def status(**overrides: Any) -> StatusRecord:
        """A running status with a reading; ``thermal__temp_c=...`` sets ``temp_c`` and so on."""
        fields = {"state": "running", "paused_s": 0.0, "memory_bytes": 3 * 1024**3 // 2, "temp_c": 71.5,
                  "temp_max_c": 74.0, "hottest_c": 80.2, "band": "acceptable", "trend": "steady"}
        fields.update({k.removeprefix("thermal__"): v for k, v in overrides.items()})
        return StatusRecord(**fields)

    @staticmethod
    def event(event: str, step: int, message: str, *, epoch: int = 1, **extra: Any) -> EventRecord:
        return EventRecord(Event(event), epoch, step, message, extra)

    @staticmethod
    def final() -> FinalRecord:
        return FinalRecord(
            test={"auc": 0.5612, "accuracy": 0.7, "brier": 0.2, "log_loss": 0.6, "pos_rate": 0.25},
            baselines={"base_rate": {"auc": 0.5, "brier": 0.19}, "logistic": {"auc": 0.5301, "brier": 0.2}},
            best_epoch=2,
            steps=30,
        )


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


_CSI = re.compile(r"\x1b\[(\??)([\d;]*)([A-Za-z])")


def terminal_screen(raw: str) -> list[str]:
    """The lines a terminal shows after receiving ``raw``: a small emulator of the codes Rich's
    Live writes (cursor up/down/column, erase line, carriage return); colours and cursor
    visibility are ignored. Lines that scrolled off stay, as in a terminal's scrollback."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(raw):
        if raw[i] == "\x1b" and (m := _CSI.match(raw, i)):
            n = int((m.group(2) or "1").split(";")[0] or 1)
            match m.group(3):
                case "A":
                    row = max(0, row - n)
                case "B":
                    row += n
                case "G":
                    col = n - 1
                case "K":
                    mode = int(m.group(2) or 0)
                    while len(lines) <= row:
                        lines.append([])
                    lines[row] = [] if mode == 2 else lines[row][:col] if mode == 0 else [" "] * col + lines[row][col:]
            i = m.end()
            continue
        char = raw[i]
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
        else:
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
        i += 1
    return ["".join(line).rstrip() for line in lines]


@pytest.fixture
def screen():
    """``terminal_screen(raw)``: the lines a terminal shows for what was written to it."""
    return terminal_screen
