"""Plain progress lines for logs, pipes and ``--no-live``: no escape codes, no redrawing."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import IO, Any

from fintrain.display import (
    epoch_label,
    format_bytes,
    format_duration,
    format_lr,
    format_metric,
    format_value,
    shown_metrics,
    temperature_text,
    val_metrics,
)
from fintrain.records import EpochRecord, EventRecord, FinalRecord, PhaseRecord, Record, StatusRecord, TrainRecord
from fintrain.thermal.reading import pressure_name
from fintrain.tracking.sink import RunInfo

# Control characters (escape sequences included) that a message might carry into a log file.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean(text: str) -> str:
    """One line of printable text."""
    return _CONTROL.sub("", text.replace("\n", " "))


class PlainLog:
    """One line per epoch, per event and per phase (validation, test, each baseline), plus a
    header with the run facts and a final line.

    Train and status records only update the figures the next epoch line shows (samples/s,
    learning rate, temperature, memory); they print nothing.

    Args:
        info: the run's static facts; the header line is written at once.
        stream: where the lines go (standard error by default).
    """

    def __init__(self, info: RunInfo, stream: IO[str] | None = None):
        self.info = info
        self.stream = stream if stream is not None else sys.stderr
        self._train: dict[str, Any] = {}
        self._status: dict[str, Any] = {}
        self._closed = False
        resumed = f", resuming at step {info.start_step:,}" if info.start_step else ""
        max_steps = f", max {info.max_steps:,} steps" if info.max_steps is not None else ""
        self._write(
            f"run {info.run_name}: {info.ticker} tier {info.tier}, budget {info.budget} "
            f"({info.params:,} params), task {info.task}, device {info.device}, "
            f"{info.epochs} epochs x {info.steps_per_epoch:,} steps{max_steps}{resumed}; "
            f"folder {info.run_dir}"
        )

    def _write(self, line: str) -> None:
        if self._closed:
            return
        self.stream.write(_clean(line) + "\n")
        self.stream.flush()

    def log(self, record: Record, step: int) -> None:
        """Write a line for an epoch, event or final record; remember the rest."""
        match record:
            case TrainRecord():
                self._train = record.to_json()
            case StatusRecord():
                self._status = record.to_json()
            case EpochRecord():
                self._write(self._epoch_line(record.to_json(), step))
            case EventRecord(event=event, message=message):
                self._write(f"step {step:,}: {event}" + (f": {message}" if message else ""))
            case PhaseRecord(done=0):  # one line as a phase starts, not one per batch
                self._write(f"step {step:,}: {record.what}" + (f" ({record.total:,} {record.unit})" if record.total else ""))
            case FinalRecord():
                self._write(self._final_line(record.to_json(), step))

    def _epoch_line(self, record: Mapping[str, Any], step: int) -> str:
        info = self.info
        parts = [
            f"epoch {epoch_label(record.get('epoch'))}/{info.epochs}",
            f"step {step:,}/{info.total_steps:,}",
            f"train loss {format_value(record.get('train/loss'))}",
            f"val loss {format_value(record.get('val/loss'))}",
        ]
        parts += [f"{name} {format_metric(name, value)}" for name, value in val_metrics(record)]
        primary = info.primary_metric
        best = record.get(f"best/{primary}")
        if best is not None:
            parts.append(f"best {primary} {format_value(best)} (epoch {epoch_label(record.get('best_epoch'))})")
        if self._train:
            parts.append(f"lr {format_lr(self._train.get('lr'))}")
            if self._train.get("throughput") is not None:
                parts.append(f"{float(self._train['throughput']):,.0f} samples/s")
        if self._status:
            temp = self._status.get("thermal/temp_c")
            if temp is not None:
                parts.append(f"SoC {temperature_text(temp)} ({self._status.get('thermal/band', '?')})")
            elif self._status.get("thermal/pressure") is not None:
                level = pressure_name(self._status["thermal/pressure"])
                parts.append(f"SoC no temperature, OS pressure {level} only (bands off)")
            if self._status.get("memory_bytes") is not None:
                parts.append(f"memory {format_bytes(self._status['memory_bytes'])}")
        if record.get("time_s") is not None:
            parts.append(f"{format_duration(float(record['time_s']))} elapsed")
        return "  ".join(parts)

    def _final_line(self, record: Mapping[str, Any], step: int) -> str:
        primary = self.info.primary_metric
        test = record.get("test") or {}
        line = (
            f"done: {record.get('steps', step):,} steps, best epoch {epoch_label(record.get('best_epoch'))}; test "
            + ", ".join(f"{k} {format_metric(k, v)}" for k, v in shown_metrics(test))
        )
        baselines = record.get("baselines") or {}
        if baselines:
            line += "; baselines " + ", ".join(
                f"{name} {primary} {format_value(m.get(primary))}" for name, m in baselines.items()
            )
        return line

    def close(self) -> None:
        """Flush; the stream itself belongs to the caller."""
        if not self._closed:
            self.stream.flush()
            self._closed = True
