"""Run folders read back: what each run is, how far it got and how it ended.

A run folder (``runs/<name>/``) is written by ``fintrain train``; this module only reads it
(``running.json``, the marker of a training process, is :mod:`fintrain.train.marker`'s).
Nothing here imports torch, so listing a hundred runs is instant.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from fintrain.data import raw_dataset, raw_manifest
from fintrain.errors import FintrainError, RunError
from fintrain.records import (
    EpochRecord,
    Event,
    EventRecord,
    Record,
    TrainRecord,
    record_from_json,
    upgrade_metrics,
    upgrade_summary,
)
from fintrain.train.marker import live_marker
from fintrain.storage import RUN_DATA_FILE

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
PREDICTIONS_FILE = "predictions.parquet"
LAST_CHECKPOINT = Path("checkpoints") / "last.pt"

FINISHED = "finished"
THERMAL_STOP = "thermal_stop"
INTERRUPTED = "interrupted"
RUNNING = "running"
STATUS_LABELS = {
    FINISHED: "finished",
    THERMAL_STOP: "stopped (thermal)",
    INTERRUPTED: "interrupted",
    RUNNING: "running",
}

# Metrics where a higher value is better; every other metric (losses, brier, mse, mae) is lower-better.
HIGHER_IS_BETTER = frozenset({"auc", "accuracy", "dir_acc"})


@dataclass(frozen=True)
class RunRecord:
    """One run folder as read from disk.

    Attributes:
        name: the folder's name.
        path: the folder.
        status: ``finished``, ``thermal_stop``, ``interrupted`` or ``running``.
        config: the resolved RunConfig as stored (a plain dict).
        summary: ``summary.json`` (only for finished runs).
        ticker, tier, budget, task, seed: from the configuration.
        primary_metric: ``auc`` for classification tasks, ``mse`` for ``return``.
        params: trainable parameters (known once the run finished).
        steps: optimizer steps completed (the summary's, else the last logged step).
        best_val: the best validation value of the primary metric so far.
        test: the test value of the primary metric (finished runs only).
        seconds: training time, pauses excluded.
        temp_max_c: the hottest smoothed temperature seen, or None without a sensor.
        resumable: a ``last.pt`` exists to continue from.
        data_sources: ticker -> where the raw data trained on came from (``yahoo``, ``sample``,
            ``import:FILE``), as the run's ``data.json`` recorded it; None for runs made before
            it did (see ``data_sources``).
    """

    name: str
    path: Path
    status: str
    config: dict[str, Any]
    summary: dict[str, Any] | None
    ticker: str
    tier: str
    budget: str
    task: str
    seed: int
    primary_metric: str
    params: int | None
    steps: int
    best_val: float | None
    test: float | None
    seconds: float | None
    temp_max_c: float | None
    resumable: bool
    data_sources: dict[str, str] | None = None
    records: list[Record] = field(default_factory=list, repr=False, compare=False)

    @property
    def status_label(self) -> str:
        """The status as shown to people (``stopped (thermal)``)."""
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def context_len(self) -> int:
        """Rows in one input window (``split.context_len``; 60 when the config predates it)."""
        return int((self.config.get("split") or {}).get("context_len", 60))

    @property
    def data_fraction(self) -> float:
        """The share of the training period trained on (``split.data_fraction``; 1 in configs
        written before it existed)."""
        return float((self.config.get("split") or {}).get("data_fraction", 1.0))

    @property
    def events(self) -> list[EventRecord]:
        """The run's event records (checkpoint, best, thermal_pause, ...), in order."""
        return [r for r in self.records if isinstance(r, EventRecord)]

    def to_json(self) -> dict[str, Any]:
        """The row ``fintrain runs list --json`` prints for this run."""
        return {
            "name": self.name,
            "path": str(self.path),
            "status": self.status,
            "ticker": self.ticker,
            "tier": self.tier,
            "budget": self.budget,
            "task": self.task,
            "seed": self.seed,
            "params": self.params,
            "steps": self.steps,
            "primary_metric": self.primary_metric,
            "best_val": self.best_val,
            "test": self.test,
            "seconds": self.seconds,
            "temp_max_c": self.temp_max_c,
            "resumable": self.resumable,
            "data_sources": self.data_sources,
        }


_WARNED_UNDECODABLE: set[Path] = set()


def read_metrics(run_dir: Path) -> list[Record]:
    """The records of ``metrics.jsonl``; a torn last line (a run killed mid-write) is skipped,
    and so is a line this version does not know. Lines that are not UTF-8 (a damaged disk
    block, say) are skipped with one warning per file. A file of an earlier format (0-based
    epochs) is read as the present one (see :func:`fintrain.records.upgrade_metrics`)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    lines: list[dict[str, Any]] = []
    undecodable = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            undecodable.append(number)
            continue
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            lines.append(data)
    records = [record for data in upgrade_metrics(lines) if (record := record_from_json(data)) is not None]
    if undecodable and path not in _WARNED_UNDECODABLE:
        _WARNED_UNDECODABLE.add(path)  # a command may read a run twice; it warns once
        log.warning(
            "%s: skipped %d line(s) that are not UTF-8 (line %s)", path, len(undecodable),
            ", ".join(map(str, undecodable[:5])),
        )
    return records


def read_predictions(run_dir: Path) -> pl.DataFrame | None:
    """A run's ``predictions.parquet`` (one row per validation and test window), or None when
    the run has none (it predates them) or the file cannot be read (with a warning)."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        log.warning("%s cannot be read (%s); its run counts without per-window predictions", path, exc)
        return None


def _read_json(path: Path, run_dir: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} cannot be read ({exc}); the run folder {run_dir} is damaged") from exc
    if not isinstance(document, dict):
        raise RunError(f"{path} does not hold a JSON object; the run folder {run_dir} is damaged")
    return document


def run_status(run_dir: Path, records: list[Record], now: float | None = None) -> str:
    """How a run ended, or that it is still going.

    A live ``running.json`` (its process still exists, see :mod:`fintrain.train.marker`)
    means running, even beside a summary: a finished run given more steps is training again.
    Otherwise a summary means finished, a thermal stop not followed by a resume means
    thermal_stop, and anything else is interrupted: Ctrl-C, or killed or crashed without a word
    (a ``kill -9`` leaves a marker behind whose process is gone).

    Args:
        run_dir: the run folder.
        records: its metrics records (:func:`read_metrics`).
        now: the current time in seconds since the epoch, for judging a marker written on
            another host; None for the clock's.
    """
    run_dir = Path(run_dir)
    if live_marker(run_dir, now) is not None:
        return RUNNING
    if (run_dir / SUMMARY_FILE).is_file():
        return FINISHED
    ends = [r.event for r in records if isinstance(r, EventRecord)
            and r.event in (Event.THERMAL_STOP, Event.INTERRUPTED, Event.RESUMED)]
    if ends and ends[-1] is Event.THERMAL_STOP:
        return THERMAL_STOP
    return INTERRUPTED


def finite_value(value: Any) -> float | None:
    """A finite number as a float; None for anything else (NaN, inf, a string, a bool, missing)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _best(values: list[float], metric: str) -> float | None:
    if not values:
        return None
    return max(values) if metric in HIGHER_IS_BETTER else min(values)


def read_run(run_dir: Path, now: float | None = None) -> RunRecord:
    """Read one run folder.

    Args:
        run_dir: a folder holding ``config.json`` (and what training wrote beside it).
        now: the current time (seconds since the epoch), for judging a ``running.json``
            written on another host.

    Raises:
        RunError: the folder is missing, is not a run folder, or a file in it is unreadable.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        if not run_dir.exists():
            raise RunError(f"no run folder {run_dir}; `fintrain runs list` shows the runs there are")
        raise RunError(f"{run_dir} is not a fintrain run folder (no {CONFIG_FILE})")
    config = _read_json(run_dir / CONFIG_FILE, run_dir)
    summary = upgrade_summary(_read_json(run_dir / SUMMARY_FILE, run_dir)) if (run_dir / SUMMARY_FILE).is_file() else None
    records = read_metrics(run_dir)
    status = run_status(run_dir, records, now)
    task = str(config.get("target", {}).get("task", "threshold"))
    metric = "auc" if task in ("threshold", "direction") else "mse"
    train_records = [r for r in records if isinstance(r, TrainRecord)]
    epoch_records = [r for r in records if isinstance(r, EpochRecord)]
    epoch_values = [v for r in epoch_records if (v := finite_value(r.val.get(metric))) is not None]
    temps = [t for r in train_records if (t := finite_value(r.temp_c)) is not None]
    if summary is not None:
        metric = summary.get("primary_metric", metric)
        steps = int(summary.get("steps", 0))
        best_val = finite_value(summary.get("best_val", {}).get(metric))
        test = finite_value(summary.get("test", {}).get(metric))
        seconds = finite_value(summary.get("seconds"))
        temp_max_c = finite_value(summary.get("temp_max_c"))
        params = summary.get("params")
    else:
        steps = max((r.step for r in records if isinstance(r, TrainRecord | EpochRecord | EventRecord)), default=0)
        # The loop keeps the best epoch by validation loss; report that epoch's primary metric.
        best_by_loss = min(
            (r for r in epoch_records if finite_value(r.val.get("loss")) is not None),
            key=lambda r: r.val["loss"], default=None,
        )
        best_val = finite_value(best_by_loss.val.get(metric)) if best_by_loss else _best(epoch_values, metric)
        test = None
        seconds = finite_value(train_records[-1].time_s) if train_records else None
        temp_max_c = max(temps) if temps else None
        params = None
    return RunRecord(
        name=run_dir.name,
        path=run_dir,
        status=status,
        config=config,
        summary=summary,
        ticker=str(config.get("data", {}).get("ticker", "?")),
        tier=str(config.get("features", {}).get("tier", "?")),
        budget=str(config.get("model", {}).get("budget", "?")),
        task=task,
        seed=int(config.get("train", {}).get("seed", 0)),
        primary_metric=metric,
        params=int(params) if isinstance(params, int) else None,
        steps=steps,
        best_val=best_val,
        test=test,
        seconds=seconds,
        temp_max_c=temp_max_c,
        resumable=(run_dir / LAST_CHECKPOINT).is_file(),
        data_sources=_recorded_sources(run_dir),
        records=records,
    )


def _recorded_sources(run_dir: Path) -> dict[str, str] | None:
    sources = (_json_or_none(run_dir / RUN_DATA_FILE) or {}).get("source")
    return {str(t): str(s) for t, s in sources.items()} if isinstance(sources, dict) and sources else None


def data_sources(record: RunRecord, data_dir: Path) -> tuple[dict[str, str] | None, str]:
    """Where a run's raw data came from, and how that is known.

    Returns ``(ticker -> source, how)``: ``how`` is ``"recorded"`` (the run's ``data.json``),
    ``"manifest"`` (older runs: the md5 they recorded, looked up in ``data_dir``'s raw manifest)
    or ``"unknown"`` (neither; the mapping is None).
    """
    if record.data_sources is not None:
        return record.data_sources, "recorded"
    recorded = _json_or_none(record.path / RUN_DATA_FILE) or (record.summary or {}).get("data_md5") or {}
    raw = recorded.get("raw") if isinstance(recorded, dict) else None
    if isinstance(raw, str):  # a summary of one ticker
        raw = {record.ticker: raw}
    if not isinstance(raw, dict) or not raw:
        return None, "unknown"
    try:
        manifest = raw_manifest(data_dir)
        entries = {t: manifest.find(raw_dataset(t), md5) for t, md5 in raw.items()}
    except FintrainError:
        return None, "unknown"
    if any(entry is None or "source" not in entry for entry in entries.values()):
        return None, "unknown"
    return {t: str(entry["source"]) for t, entry in entries.items()}, "manifest"


def list_runs(runs_dir: Path, now: float | None = None) -> list[RunRecord]:
    """Every run folder directly under ``runs_dir``, sorted by name.

    Folders without ``config.json`` (a report folder, say) are not runs and are left out; a
    damaged run folder is left out with a warning in the log rather than hiding all the others.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = []
    for child in sorted(runs_dir.iterdir()):
        if not (child / CONFIG_FILE).is_file():
            continue
        try:
            runs.append(read_run(child, now))
        except RunError as exc:
            log.warning("%s", exc)
    return runs


def resolve_run(name_or_path: str | Path, runs_dir: Path) -> Path:
    """A run given as a folder path, or as a name under ``runs_dir``."""
    given = Path(name_or_path)
    if (given / CONFIG_FILE).is_file():
        return given
    candidate = Path(runs_dir) / given
    if (candidate / CONFIG_FILE).is_file():
        return candidate
    known = [r.name for r in list_runs(runs_dir)]
    hint = f"; runs in {runs_dir}: {', '.join(known[:8])}{' ...' if len(known) > 8 else ''}" if known else f"; {runs_dir} holds no runs"
    raise RunError(f"no run {str(name_or_path)!r} (neither a run folder nor a run in {runs_dir}){hint}")


@dataclass(frozen=True)
class DataUse:
    """Which stored data versions the runs in a folder trained on.

    Attributes:
        by_md5: md5 of a raw or feature version -> names of the runs that used it.
        unrecorded: ticker -> runs that did not record their versions (made before versioned
            storage); every version of those tickers counts as used.
    """

    by_md5: dict[str, list[str]]
    unrecorded: dict[str, list[str]]


def _md5s(value: Any) -> list[str]:
    """md5 strings from a ``data.json`` or a summary's ``data_md5`` (a string or ticker -> md5)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, str)]
    return []


def data_in_use(runs_dir: Path) -> DataUse:
    """The data versions each run folder in ``runs_dir`` trained on (``data.json``, else its summary)."""
    by_md5: dict[str, list[str]] = {}
    unrecorded: dict[str, list[str]] = {}
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return DataUse(by_md5, unrecorded)
    for run_dir in sorted(p for p in runs_dir.iterdir() if (p / CONFIG_FILE).is_file()):
        record = _json_or_none(run_dir / RUN_DATA_FILE) or (_json_or_none(run_dir / SUMMARY_FILE) or {}).get("data_md5")
        md5s = [m for key in ("raw", "features") for m in _md5s((record or {}).get(key))]
        if md5s:
            for md5 in md5s:
                by_md5.setdefault(md5, []).append(run_dir.name)
            continue
        data = (_json_or_none(run_dir / CONFIG_FILE) or {}).get("data") or {}
        tickers = str(data.get("ticker") or "").split(",")
        for ticker in (t.strip().upper() for t in tickers if t.strip()):
            unrecorded.setdefault(ticker, []).append(run_dir.name)
    return DataUse(by_md5, unrecorded)


def _json_or_none(path: Path) -> Any:
    """A JSON file's document, or None when it is absent or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
