"""The records the training loop sends to its sinks: one frozen dataclass per kind.

A sink receives a :data:`Record` and dispatches on its type with ``match``. ``to_json()`` gives
the flat object a line of ``metrics.jsonl`` holds (``"kind"`` first; the file's format predates
these classes and is unchanged), and :func:`record_from_json` reads such a line back
(``fintrain.experiments.runs``). Epochs are numbered from 1, in the records, in
``metrics.jsonl`` and ``summary.json`` as on the screen; ``step`` counts optimizer steps
completed. Files written before that convention (format 1: epochs were 0-based indices) carry
no format marker and are converted on read by :func:`upgrade_metrics` and
:func:`upgrade_summary`.

This module imports nothing heavy, so that reading run folders does not load torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

# metrics.jsonl and summary.json format 2: epochs numbered from 1. Format 1 (no marker) held
# 0-based epoch indices in "epoch" and "best_epoch".
METRICS_FORMAT = 2
SUMMARY_FORMAT = 2
FORMAT_KIND = "format"  # the first line of a format-2 metrics.jsonl: {"kind": "format", "version": 2, ...}


class Event(StrEnum):
    """What an event record announces."""

    CHECKPOINT = "checkpoint"
    BEST = "best"
    THERMAL_PAUSE = "thermal_pause"
    THERMAL_RESUME = "thermal_resume"
    THERMAL_STOP = "thermal_stop"
    INTERRUPTED = "interrupted"
    EARLY_STOP = "early_stop"
    RESUMED = "resumed"
    NONFINITE = "nonfinite"


@dataclass(frozen=True)
class TrainRecord:
    """The mean training loss of the steps since the previous one (every ``log_every`` steps or
    ``log_every_s`` seconds, at the end of an epoch and at the last step), with the figures of
    that stretch; ``epoch`` is the epoch the steps belong to, numbered from 1."""

    kind: ClassVar[str] = "train"
    epoch: int
    step: int
    loss: float | None
    lr: float
    throughput: float  # samples/s
    temp_c: float | None  # the latest thermal reading, None without one
    time_s: float  # training seconds so far (thermal pauses excluded)
    paused: int = 0  # train records are sent while running only

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.jsonl`` object."""
        return {"kind": self.kind, "epoch": self.epoch, "step": self.step, "train/loss": self.loss, "lr": self.lr,
                "throughput": self.throughput, "thermal/temp_c": self.temp_c, "thermal/paused": self.paused,
                "time_s": self.time_s}


@dataclass(frozen=True)
class EpochRecord:
    """Validation after an epoch (or after the last step of a run cut short by max_steps).

    ``epoch`` is the epoch just trained and ``best_epoch`` the selected one, numbered from 1
    (``best_epoch`` None while no epoch was selected)."""

    kind: ClassVar[str] = "epoch"
    epoch: int
    step: int
    train_loss: float | None  # the epoch's mean training loss
    val: Mapping[str, float]  # loss and the task's metrics (auc, accuracy, ... or mse, mae, ...)
    best_metric: str  # the primary metric's name
    best_value: float | None  # its value at the best epoch so far
    best_epoch: int | None
    time_s: float

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.jsonl`` object: ``val/<metric>`` and ``best/<primary>`` keys."""
        return {"kind": self.kind, "epoch": self.epoch, "step": self.step, "train/loss": self.train_loss,
                **{f"val/{k}": v for k, v in self.val.items()}, f"best/{self.best_metric}": self.best_value,
                "best_epoch": self.best_epoch, "time_s": self.time_s}


@dataclass(frozen=True)
class EventRecord:
    """Something that happened, in words; ``extra`` holds the event's figures (``path`` of a
    checkpoint, ``temp_c`` of a thermal event, ``paused_s`` of a resume).

    ``epoch`` is the epoch of the latest step taken (numbered from 1; 1 before the first step),
    except for ``resumed``, where it is the epoch training continues in."""

    kind: ClassVar[str] = "event"
    event: Event
    epoch: int
    step: int
    message: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.jsonl`` object, the extras as top-level keys."""
        return {"kind": self.kind, "event": str(self.event), "epoch": self.epoch, "step": self.step,
                "message": self.message, **self.extra}


@dataclass(frozen=True)
class StatusRecord:
    """The moment's state for the live panel: cheap and frequent, never written to a file.

    ``band`` is ``"off"`` without a thermal monitor; the other thermal fields are then None.
    """

    kind: ClassVar[str] = "status"
    state: Literal["running", "paused"]
    paused_s: float
    memory_bytes: int | None
    time_s: float | None = None  # training seconds so far, while running (the panel's ETA)
    temp_c: float | None = None
    temp_max_c: float | None = None
    hottest_c: float | None = None
    band: str = "off"
    trend: str | None = None
    pressure: int | None = None  # the OS's thermal pressure level, where the source has one
    # Running figures between train records (the panel shows them from step 1): the mean loss of
    # the steps since the last train record (None when there are none), the learning rate, samples/s.
    loss: float | None = None
    lr: float | None = None
    throughput: float | None = None

    @classmethod
    def of(cls, state: Literal["running", "paused"], paused_s: float, status: Any, memory_bytes: int | None,
           time_s: float | None = None, *, loss: float | None = None, lr: float | None = None,
           throughput: float | None = None) -> StatusRecord:
        """From a thermal monitor's ``ThermalStatus`` (None: no monitor) and the running figures."""
        running = {"loss": loss, "lr": lr, "throughput": throughput}
        if status is None:
            return cls(state, paused_s, memory_bytes, time_s, **running)
        return cls(state, paused_s, memory_bytes, time_s, status.temp_c, status.temp_max_c, status.hottest_c,
                   status.band, status.trend, status.pressure, **running)

    def to_json(self) -> dict[str, Any]:
        """The flat object, as the panel's tests and displays read it."""
        running = {"time_s": self.time_s} if self.time_s is not None else {}
        thermal: dict[str, Any] = {"thermal/temp_c": self.temp_c, "thermal/band": self.band}
        if self.band != "off":
            thermal = {"thermal/temp_c": self.temp_c, "thermal/temp_max_c": self.temp_max_c,
                       "thermal/hottest_c": self.hottest_c, "thermal/band": self.band, "thermal/trend": self.trend,
                       "thermal/pressure": self.pressure}
        figures = {key: value for key, value in (("train/loss", self.loss), ("lr", self.lr),
                                                  ("throughput", self.throughput)) if value is not None}
        return {"kind": self.kind, "state": self.state, "paused_s": self.paused_s, **running, **thermal,
                "memory_bytes": self.memory_bytes, **figures}


@dataclass(frozen=True)
class PhaseRecord:
    """What runs now besides training steps (validation, test, baselines, the bootstrap), with its
    progress when it counts (``done`` of ``total`` batches): the displays show it, so a run is
    never silent for a minute. Never written to a file.

    ``what`` says it in words (``evaluating test``, ``fitting gbdt baseline``); ``total`` is
    None for a phase that does not count.
    """

    kind: ClassVar[str] = "phase"
    what: str
    done: int = 0
    total: int | None = None
    unit: str = "batches"

    def text(self) -> str:
        """``evaluating test 3/16 batches``, or ``what`` alone."""
        return self.what if self.total is None else f"{self.what} {self.done:,}/{self.total:,} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        """The flat object."""
        return {"kind": self.kind, "what": self.what, "done": self.done, "total": self.total, "unit": self.unit}


@dataclass(frozen=True)
class FinalRecord:
    """Test metrics of the best checkpoint beside the baselines; once, at the end."""

    kind: ClassVar[str] = "final"
    test: Mapping[str, float]
    baselines: Mapping[str, Mapping[str, float]]
    best_epoch: int | None  # numbered from 1
    steps: int

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.jsonl`` object."""
        return {"kind": self.kind, "test": dict(self.test), "baselines": dict(self.baselines),
                "best_epoch": self.best_epoch, "steps": self.steps}


Record = TrainRecord | EpochRecord | EventRecord | StatusRecord | PhaseRecord | FinalRecord


def record_from_json(data: Mapping[str, Any]) -> Record | None:
    """The record a ``metrics.jsonl`` object holds; None for an unknown kind or a damaged line."""
    try:
        match data.get("kind"):
            case "train":
                return TrainRecord(data["epoch"], data["step"], data.get("train/loss"), data.get("lr"),
                                   data.get("throughput"), data.get("thermal/temp_c"), data.get("time_s"),
                                   data.get("thermal/paused", 0))
            case "epoch":
                best = [k for k in data if k.startswith("best/")]
                return EpochRecord(data["epoch"], data["step"], data.get("train/loss"),
                                   {k.removeprefix("val/"): v for k, v in data.items() if k.startswith("val/")},
                                   best[0].removeprefix("best/") if best else "", data[best[0]] if best else None,
                                   data.get("best_epoch"), data.get("time_s"))
            case "event":
                known = {"kind", "event", "epoch", "step", "message"}
                return EventRecord(Event(data["event"]), data.get("epoch", 0), data["step"], data.get("message", ""),
                                   {k: v for k, v in data.items() if k not in known})
            case "final":
                return FinalRecord(data.get("test") or {}, data.get("baselines") or {}, data.get("best_epoch"),
                                   data.get("steps", data.get("step", 0)))
            case "status":
                return StatusRecord(data["state"], data.get("paused_s", 0.0), data.get("memory_bytes"),
                                    data.get("time_s"), data.get("thermal/temp_c"), data.get("thermal/temp_max_c"),
                                    data.get("thermal/hottest_c"), data.get("thermal/band", "off"),
                                    data.get("thermal/trend"), data.get("thermal/pressure"), data.get("train/loss"),
                                    data.get("lr"), data.get("throughput"))
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    return None


def epoch_number(index: Any) -> int | None:
    """A format-1 0-based epoch index as the epoch's number (from 1); None for none (-1)."""
    return index + 1 if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else None


def format_line() -> dict[str, Any]:
    """The first line of a metrics.jsonl in the present format (``step`` 0, so a resume keeps it)."""
    return {"kind": FORMAT_KIND, "step": 0, "version": METRICS_FORMAT, "epochs": "numbered from 1"}


def metrics_format(lines: list[Mapping[str, Any]]) -> int:
    """The format of a metrics.jsonl's objects: its marker's version, 1 without one."""
    for data in lines:
        if data.get("kind") == FORMAT_KIND and isinstance(data.get("version"), int):
            return data["version"]
    return 1


def upgrade_metrics(lines: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A metrics.jsonl's objects in the present format, from whichever format they are in.

    Format 1 held 0-based indices: the epoch in progress (train, event) or just validated
    (epoch), and ``best_epoch``. An event logged at the step of an epoch record (an epoch's end:
    its checkpoint, best, early stop) takes that epoch's number, as the present loop gives it;
    ``resumed`` names the epoch training continues in.
    """
    if metrics_format(lines) >= METRICS_FORMAT:
        return [dict(d) for d in lines]
    ends = {d.get("step"): d["epoch"] for d in lines if d.get("kind") == "epoch" and isinstance(d.get("epoch"), int)}
    upgraded = [format_line()]
    for data in lines:
        data = dict(data)
        kind, epoch = data.get("kind"), data.get("epoch")
        if isinstance(epoch, int):
            at_end = kind == "event" and data.get("event") != Event.RESUMED and data.get("step") in ends
            data["epoch"] = ends[data["step"]] + 1 if at_end else epoch + 1
        if kind in ("epoch", "final") and "best_epoch" in data:
            data["best_epoch"] = epoch_number(data["best_epoch"])
        upgraded.append(data)
    return upgraded


def upgrade_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A summary.json document in the present format (``format_version`` 2: ``best_epoch``
    numbered from 1; ``epochs_completed`` was a count already)."""
    summary = dict(summary)
    version = summary.get("format_version", 1)
    if not isinstance(version, int) or version < SUMMARY_FORMAT:
        summary["best_epoch"] = epoch_number(summary.get("best_epoch"))
        summary["format_version"] = SUMMARY_FORMAT
    return summary
