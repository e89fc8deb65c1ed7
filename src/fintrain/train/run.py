"""A training run end to end: data, model, run folder, fit, test metrics beside baselines.

``start_run`` begins a new run folder, ``resume_run`` continues one from ``last.pt``,
``plan_run`` does everything short of training (``--dry-run``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from fintrain import __version__
from fintrain.config import RESUMABLE_FIELDS, ModelConfig, RunConfig, TrainConfig, check_run_name, validate_config
from fintrain.device import device_label, free_memory, is_oom, resolve_device
from fintrain.evaluate import (
    MODEL,
    Assessment,
    BaselineScores,
    assess,
    baseline_scores,
    equity_plot,
    primary_metric,
    selection_metric,
    task_metrics,
)
from fintrain.errors import (
    CheckpointError,
    ConfigError,
    DeviceError,
    FintrainError,
    RunBusyError,
    RunError,
    ThermalError,
    TrainingStopped,
)
from fintrain.model import build_model, count_parameters, model_config_for
from fintrain.records import SUMMARY_FORMAT, FinalRecord, PhaseRecord, upgrade_summary
from fintrain.storage import RUN_DATA_FILE, atomic_path, atomic_write_json, check_writable, refused_writes, utc_now
from fintrain.thermal import ThermalMonitor, open_sensor
from fintrain.tracking import MetricSink, MultiSink, NullSink, RunInfo, make_sinks
from fintrain.train.batch_cache import DEFAULT_BATCH_SIZE, lookup_batch_size
from fintrain.train.checkpoint import BEST, CHECKPOINT_DIR, LAST, LAST_PREV, load_checkpoint
from fintrain.train.distributed import Distributed, rank_device
from fintrain.train.estimate import StepTiming, estimate_seconds, time_steps
from fintrain.train.loop import (
    Checkpointer,
    FitData,
    FitState,
    StopReason,
    evaluate,
    total_steps,
    fit,
    loss_function,
    phase_progress,
    predict,
    resolve_pos_weight,
)
from fintrain.train.marker import claim_run, release_run
from fintrain.train.options import RunOptions
from fintrain.train.prepare import Prepared, check_names, prepare_data

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """A run ready to train: resolved device, data, model and batch size."""

    cfg: RunConfig
    device: torch.device
    prepared: Prepared
    model: torch.nn.Module
    model_cfg: ModelConfig
    batch_size: int
    batch_size_origin: str

    @property
    def params(self) -> int:
        """Trainable parameters."""
        return count_parameters(self.model)

    def estimate(self, run_dir: Path, timings: dict[str, StepTiming] | None = None) -> dict[str, Any]:
        """Steps per epoch, total steps and the time they should take, from 3 timed training steps
        after a warm-up on this plan's model (whose weights they move) and batch size; ``run_dir``
        is where the run would go. ``timings`` (model shape and batch -> timing) reuses the
        timing of an identical model and batch (a sweep's cells). Nothing is written."""
        splits, cfg = self.prepared.splits, self.cfg
        train_cfg = TrainConfig.model_validate({**cfg.train.model_dump(), "batch_size": self.batch_size})
        batches = {name: len(getattr(splits, name).batch_indices(self.batch_size, shuffle=False, seed=0, epoch=0))
                   for name in ("train", "val", "test")}
        total = total_steps(train_cfg, batches["train"])
        timings = {} if timings is None else timings
        key = f"{self.model_cfg.model_dump_json()}|{self.batch_size}|{cfg.train.precision}|{cfg.target.task}"
        if key not in timings:
            timings[key] = time_steps(self.model, splits.train, splits.val, train_cfg, cfg.target.task)
        timing = timings[key]
        return {
            "steps_per_epoch": batches["train"],
            "epochs": cfg.train.epochs,
            "max_steps": cfg.train.max_steps,
            "total_steps": total,
            "step_s": timing.step_s,
            "eval_batch_s": timing.eval_batch_s,
            "steps_timed": timing.steps_timed,
            "estimated_s": estimate_seconds(timing, total, batches["train"], batches["val"], batches["test"]),
            "run_dir": str(run_dir),
        }

    def variant(self, cfg: RunConfig) -> Plan:
        """The plan of another configuration on the same data and device (a sweep's cell): its
        own model, shape and batch size."""
        model_cfg = model_config_for(cfg, self.prepared.n_features)
        model = build_model(model_cfg, cfg.train.seed, self.device)
        batch_size, origin = resolve_batch_size(cfg, self.device, model_cfg, len(self.prepared.splits.train))
        return Plan(cfg, self.device, self.prepared, model, model_cfg, batch_size, origin)

    def describe(self) -> dict[str, Any]:
        """The resolved configuration, parameter count and data sizes (``--dry-run``)."""
        splits = self.prepared.splits
        frame = self.prepared.frame
        return {
            "config": self.cfg.model_dump(mode="json"),
            "model_config": self.model_cfg.model_dump(mode="json"),
            "params": self.params,
            "device": device_label(self.device),
            "batch_size": self.batch_size,
            "batch_size_origin": self.batch_size_origin,
            "data": {
                "ticker": self.cfg.data.ticker,
                "tier": self.cfg.features.tier,
                "rows": frame.height,
                "first_date": frame["date"].min().isoformat(),
                "last_date": frame["date"].max().isoformat(),
                "n_features": self.prepared.n_features,
                "windows": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
                "md5": self.prepared.data_md5(),
            },
        }


@dataclass
class RunOutcome:
    """How a run ended."""

    run_dir: Path
    summary: dict[str, Any] | None
    already_finished: bool = False


def default_run_name(cfg: RunConfig) -> str:
    """A timestamp plus ticker, tier and budget: ``20261128-103000-SPY-a20-2m``.

    Several tickers show as the first and a count: ``...-AAPL+3-a20-2m``.
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tickers = cfg.data.tickers
    label = tickers[0] if len(tickers) == 1 else f"{tickers[0]}+{len(tickers) - 1}"
    return f"{stamp}-{label}-{cfg.features.tier}-{cfg.model.budget}"


def resolve_batch_size(cfg: RunConfig, device: torch.device, model_cfg: ModelConfig, n_train: int) -> tuple[int, str]:
    """The batch size and where it came from (configured, probe cache, or default)."""
    if cfg.train.batch_size != "auto":
        return int(cfg.train.batch_size), "configured"
    cached = lookup_batch_size(device, model_cfg, n_train, cfg.train.precision)
    if cached is not None:
        return cached, "probe-batch cache"
    return DEFAULT_BATCH_SIZE, "default (run `fintrain probe-batch` to measure this machine)"


def plan_run(
    cfg: RunConfig,
    data_dir: Path,
    notify: Callable[[str], None] = log.info,
    dist: Distributed | None = None,
    raw_md5s: dict[str, str] | None = None,
) -> Plan:
    """Resolve the device, prepare the data and build the model, without training.

    ``raw_md5s`` pins tickers to the raw versions a resumed run started with.
    """
    check_names(cfg)
    dist = dist or Distributed()
    device = rank_device(dist, resolve_device(cfg.train.device))
    if not dist.is_main:
        dist.barrier()  # rank 0 fetches and builds first; the others then read its files
    prepared = prepare_data(data_dir, cfg, device, notify, raw_md5s=raw_md5s)
    if dist.is_main:
        dist.barrier()
    model_cfg = model_config_for(cfg, prepared.n_features)
    model = build_model(model_cfg, cfg.train.seed, device)
    batch_size, origin = resolve_batch_size(cfg, device, model_cfg, len(prepared.splits.train))
    return Plan(cfg, device, prepared, model, model_cfg, batch_size, origin)


def plan_batch_size(cfg: RunConfig, data_dir: Path, notify: Callable[[str], None] = log.info) -> tuple[int, str]:
    """The batch size a run of ``cfg`` would train at, and where it came from, from its data and
    model shape (fetching and building the data when missing) without building the model."""
    check_names(cfg)
    device = resolve_device(cfg.train.device)
    prepared = prepare_data(data_dir, cfg, device, notify)
    model_cfg = model_config_for(cfg, prepared.n_features)
    return resolve_batch_size(cfg, device, model_cfg, len(prepared.splits.train))


def open_monitor(cfg: RunConfig) -> Any:
    """A started thermal monitor (sampling on its own thread), or None when monitoring is off."""
    if cfg.thermal.source == "none":
        return None
    sensor = open_sensor(cfg.thermal.source, cfg.thermal.json_field)
    monitor = ThermalMonitor(cfg.thermal, sensor)
    first = monitor.sample_once()
    if not first.has_reading:
        if cfg.thermal.require_sensor:
            monitor.close_sensor()
            raise ThermalError(
                f"no temperature reading from thermal source {cfg.thermal.source!r} and "
                "thermal.require_sensor is set; pick a source with --thermal-source or unset it"
            )
        # The monitor itself warns (once) that training goes on without thermal protection.
    return monitor.start()


def _run_info(plan: Plan, run_dir: Path, steps_per_epoch: int, start_step: int) -> Any:
    cfg = plan.cfg
    return RunInfo(
        run_name=run_dir.name,
        run_dir=run_dir,
        device=device_label(plan.device),
        ticker=cfg.data.ticker,
        tier=cfg.features.tier,
        budget=cfg.model.budget,
        params=plan.params,
        task=cfg.target.task,
        epochs=cfg.train.epochs,
        steps_per_epoch=steps_per_epoch,
        max_steps=cfg.train.max_steps,
        primary_metric=primary_metric(cfg.target.task),
        start_step=start_step,
    )


def _hparams(plan: Plan) -> dict[str, Any]:
    cfg = plan.cfg
    return {
        "ticker": cfg.data.ticker, "tier": cfg.features.tier, "budget": cfg.model.budget,
        "task": cfg.target.task, "horizon": cfg.target.horizon, "context_len": cfg.split.context_len,
        "lr": cfg.train.lr, "batch_size": plan.batch_size, "seed": cfg.train.seed,
        "params": plan.params, "d_model": plan.model_cfg.d_model, "n_layers": plan.model_cfg.n_layers,
    }


def per_ticker_metrics(model: torch.nn.Module, data: Any, batch_size: int, task: str,
                       progress: Any = None) -> dict[str, dict[str, float]]:
    """Test metrics of each ticker's windows, when the split holds several tickers."""
    tickers = getattr(data, "tickers", None)
    if tickers is None or tickers.n_unique() < 2:
        return {}
    output, labels = predict(model, data, batch_size, task, progress)
    names = np.asarray(tickers.to_list())
    return {
        str(t): {**task_metrics(task, labels[names == t], output[names == t]), "windows": int((names == t).sum())}
        for t in sorted(set(names))
    }


def _host(t: torch.Tensor) -> np.ndarray:
    """A float64 NumPy copy on the host: copied to the CPU first, cast there (MPS has no float64)."""
    return t.detach().cpu().numpy().astype(np.float64)


def predictions_frame(
    model: torch.nn.Module, plan: Plan, baselines: dict[str, BaselineScores], sink: MetricSink | None = None, step: int = 0
) -> pl.DataFrame:
    """One row per validation and test window: split, date, ticker, label, next_return (close t to
    close t+1), the model's score (``PatchTST``) and each baseline's (``predictions.parquet``)."""
    splits, task = plan.prepared.splits, plan.cfg.target.task
    parts = []
    for name, words in (("val", "validation"), ("test", "test")):
        windows = getattr(splits, name)
        progress = phase_progress(sink, step, f"predicting {words} windows") if sink is not None else None
        output, labels = predict(model, windows, plan.batch_size, task, progress)
        tickers = windows.tickers if windows.tickers is not None else pl.Series([plan.cfg.data.tickers[0]] * len(windows))
        parts.append(pl.DataFrame({
            "split": [name] * len(windows),
            "date": windows.dates,
            "ticker": tickers.cast(pl.String),
            "label": labels,
            "next_return": windows.next_returns,
            MODEL: output,
            **{b: getattr(scores, name) for b, scores in baselines.items()},
        }))
    return pl.concat(parts)


def judge(model: torch.nn.Module, plan: Plan, run_dir: Path, select: str, sink: MetricSink | None = None,
          step: int = 0) -> Assessment:
    """Baselines, ``predictions.parquet``, intervals, verdicts, trading view and ``equity.png``.

    ``sink`` (the run's) hears each phase as it starts (``PhaseRecord``), for the displays.
    """
    cfg, splits = plan.cfg, plan.prepared.splits

    def phase(what: str) -> None:
        if sink is not None:
            sink.log(PhaseRecord(what), step)

    baselines = baseline_scores(
        cfg.target.task, _host(splits.train.last_row_features()), _host(splits.train.labels),
        _host(splits.val.last_row_features()), _host(splits.val.labels), _host(splits.test.last_row_features()),
        select=select, seed=cfg.train.seed, notify=phase,
    )
    frame = predictions_frame(model, plan, baselines, sink, step)
    with atomic_path(run_dir / "predictions.parquet") as tmp:
        frame.write_parquet(tmp)
    learned = [name for name, scores in baselines.items() if scores.learned]
    phase(f"bootstrap intervals and trading view ({cfg.eval.bootstrap:,} resamples)")
    assessment = assess(frame, cfg.target.task, cfg.target.horizon, cfg.eval, cfg.block_days, learned, seed=cfg.train.seed)
    label = cfg.data.tickers[0] if len(cfg.data.tickers) == 1 else f"{len(cfg.data.tickers)} tickers, equal weight"
    phase("drawing equity.png")
    equity_plot(assessment.equity, run_dir / "equity.png",
                f"{label}, test period: long/flat at the validation cut, {cfg.eval.cost_bps:g} bps per unit of turnover")
    return assessment


def _execute(plan: Plan, run_dir: Path, resume: dict[str, Any] | None, options: RunOptions) -> dict[str, Any] | None:
    """Fit, then evaluate the best checkpoint on the test split and write summary.json.

    Under torchrun only rank 0 shows progress, writes files and returns the summary.
    """
    dist = options.dist or Distributed()
    cfg = plan.cfg
    splits = plan.prepared.splits
    started = time.monotonic()
    checkpointer = Checkpointer(
        run_dir / CHECKPOINT_DIR,
        extra={
            "config": cfg.model_dump(mode="json"),
            "model_config": plan.model_cfg.model_dump(mode="json"),
            "scaler": splits.scaler.state_dict(),
            "data_md5": plan.prepared.data_md5(),
            "fintrain_version": __version__,
        },
    )
    steps_per_epoch = len(splits.train.batch_indices(plan.batch_size, shuffle=False, seed=0, epoch=0))
    start_step = int(resume["step"]) if resume else 0
    info = _run_info(plan, run_dir, steps_per_epoch, start_step)
    sink = NullSink()
    if dist.is_main:
        sink = MultiSink([make_sinks(info, run_dir, _hparams(plan), live=options.live, console=options.console),
                          *options.sinks])
    opened = None  # a monitor this function opened, and so stops
    try:
        monitor = options.monitor
        if monitor is None and dist.is_main:
            monitor = opened = open_monitor(cfg)
        train_cfg = TrainConfig.model_validate({**cfg.train.model_dump(), "batch_size": plan.batch_size})
        select = selection_metric(cfg.target.task, cfg.eval.select_on)
        data = FitData(splits.train, splits.val, cfg.target.task, select)
        oom = None
        try:
            result = fit(plan.model, data, train_cfg, sink, checkpointer, monitor=monitor, resume=resume, dist=dist)
        except Exception as exc:  # only out-of-memory is translated; anything else goes on up
            if not is_oom(exc):
                raise
            oom = str(exc).splitlines()[0][:200]
        if oom is not None:
            # Outside the except block, so the traceback no longer pins the step's tensors.
            free_memory(plan.device)
            raise DeviceError(
                f"out of memory at batch size {plan.batch_size} on {device_label(plan.device)} ({oom}); "
                "run `fintrain probe-batch` to find the largest batch size this machine holds, then "
                "train with --batch-size N"
            )
        if not dist.is_main:
            return None
        state = result.state
        best = load_checkpoint(run_dir / CHECKPOINT_DIR / BEST)
        plan.model.load_state_dict(best["model"])
        loss_fn = loss_function(cfg.target.task, resolve_pos_weight(cfg.train, cfg.target.task, splits.train.labels))
        # Test metrics, predictions and verdicts all come from the selected checkpoint, in float32.
        test = evaluate(plan.model, splits.test, plan.batch_size, cfg.target.task, loss_fn,
                        phase_progress(sink, state.step, "evaluating test (best.pt)"))
        per_ticker = per_ticker_metrics(plan.model, splits.test, plan.batch_size, cfg.target.task,
                                        phase_progress(sink, state.step, "test metrics per ticker"))
        judged = judge(plan.model, plan, run_dir, select, sink, state.step)
        base = {name: {m: v for m, v in values.items() if m != "ci"} for name, values in judged.baselines.items()}
        summary = {
            "format_version": SUMMARY_FORMAT,
            "run_name": run_dir.name,
            "status": "finished",
            "stop_reason": state.stop.describe(train_cfg) if state.stop else "",
            "fintrain_version": __version__,
            "ticker": cfg.data.ticker,
            "tickers": cfg.data.tickers,
            "tier": cfg.features.tier,
            "budget": cfg.model.budget,
            "task": cfg.target.task,
            "params": int(plan.params),
            "device": device_label(plan.device),
            "batch_size": plan.batch_size,
            "primary_metric": primary_metric(cfg.target.task),
            "selected_on": select,
            "test": test,
            **({"per_ticker": per_ticker} if per_ticker else {}),
            **judged.summary(),
            "eval": {"bootstrap": cfg.eval.bootstrap, "block_days": cfg.block_days, "ci": cfg.eval.ci,
                     "cost_bps": cfg.eval.cost_bps},
            "best_epoch": state.best_epoch_number,
            "best_val": {"loss": state.best_val, primary_metric(cfg.target.task): state.best_metric,
                         **({select: state.best_score} if select != "loss" else {})},
            "epochs_completed": state.epoch,
            "steps": state.step,
            "seconds": state.train_seconds,
            "wall_seconds": time.monotonic() - started,
            "samples_per_s": state.samples_seen / state.train_seconds if state.train_seconds else None,
            "temp_max_c": state.temp_max_c,
            "paused_total_s": state.paused_total_s,
            "skipped_steps": state.skipped_steps,
            "windows": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
            "data_md5": plan.prepared.data_md5(),
            "finished_at": utc_now(),
        }
        sink.log(FinalRecord(test, base, state.best_epoch_number, state.step), state.step)
        atomic_write_json(run_dir / "summary.json", summary)
        return summary
    finally:
        if opened is not None:
            opened.stop()
        sink.close()


def start_run(
    cfg: RunConfig,
    data_dir: Path,
    runs_dir: Path,
    *,
    run_name: str | None = None,
    options: RunOptions = RunOptions(),
) -> RunOutcome:
    """Train a new run in ``runs_dir/run_name``; an existing name is refused.

    While it trains, ``running.json`` in the folder names this process (rank 0's under
    torchrun), so that ``fintrain runs`` can tell it is running and a ``--resume`` of the same
    folder is refused; see :mod:`fintrain.train.marker`.

    ``options`` say how the run is shown and watched (see :class:`RunOptions`).
    """
    dist = options.dist or Distributed()
    if run_name is not None:
        check_run_name(run_name)
    check_writable(Path(runs_dir), "--runs-dir")
    # Ranks could stamp different seconds into a default name: rank 0's name is the run's.
    name = dist.broadcast(run_name or default_run_name(cfg))
    run_dir = Path(runs_dir) / name
    exists = run_dir.exists()
    dist.barrier()  # every rank looks before rank 0 creates it
    if exists:
        raise _exists_error(run_dir)
    plan = plan_run(cfg, data_dir, options.notify, dist)
    # The batch size is stored resolved, so a resume trains exactly the same way.
    cfg = validate_config(_with(cfg.model_dump(mode="json"), "train.batch_size", plan.batch_size))
    plan.cfg = cfg
    if dist.is_main:
        check_writable(Path(runs_dir), "--runs-dir")
        with refused_writes(Path(runs_dir), "--runs-dir"):
            Path(runs_dir).mkdir(parents=True, exist_ok=True)
            try:
                # Not exist_ok: of two processes given the same name, the later one stops here.
                run_dir.mkdir()
            except FileExistsError:
                raise _exists_error(run_dir) from None
            (run_dir / CHECKPOINT_DIR).mkdir()
    # The marker goes in before config.json, so no reader sees a run folder without one.
    try:
        with _holding(run_dir, dist):
            if dist.is_main:
                atomic_write_json(run_dir / "config.json", cfg.model_dump(mode="json"))
                # The versions trained on, so that `data prune` keeps them and a resume finds them.
                atomic_write_json(run_dir / RUN_DATA_FILE, plan.prepared.versions())
            summary = _execute(plan, run_dir, None, options)
    except (FintrainError, OSError) as exc:
        # A run that failed before its first checkpoint has nothing to resume: leave no folder.
        if dist.is_main and not isinstance(exc, TrainingStopped) and not any((run_dir / CHECKPOINT_DIR).glob("*.pt")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return RunOutcome(run_dir, summary)


def _exists_error(run_dir: Path) -> ConfigError:
    return ConfigError(
        f"run folder {run_dir} exists; pick another --run-name or continue it with "
        f"`fintrain train --resume {run_dir}`"
    )


@contextlib.contextmanager
def _holding(run_dir: Path, dist: Distributed) -> Iterator[None]:
    """Hold ``run_dir/running.json`` for this process while the block runs (rank 0 writes it).

    The marker is removed however the block ends (finished, Ctrl-C, thermal stop, an error);
    only a kill Python never sees leaves it behind, and readers then find its process gone.

    Raises:
        RunBusyError: another live process holds the folder (raised on every rank).
    """
    marker, refusal = None, None
    if dist.is_main:
        try:
            marker = claim_run(run_dir)
        except RunBusyError as exc:
            refusal = exc
    # The other ranks must not go on to wait at a barrier rank 0 will never reach.
    message = dist.broadcast(None if refusal is None else str(refusal))
    if refusal is not None:
        raise refusal
    if message is not None:
        raise RunBusyError(message)
    try:
        yield
    finally:
        if marker is not None:
            release_run(run_dir, marker)


def _with(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    section, key = dotted.split(".")
    return {**data, section: {**data[section], key: value}}


def load_run_config(run_dir: Path, overrides: dict[str, Any]) -> RunConfig:
    """A run's config.json with the options ``--resume`` allows applied on top."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).exists():
        raise ConfigError(f"--resume {run_dir}: no such folder; give a run folder (`fintrain runs list` shows them)")
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a fintrain run folder (no config.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(
            f"{path} is damaged ({exc}); restore it from a backup, or start a new run"
        ) from exc
    if not isinstance(data, dict):
        raise RunError(f"{path} does not hold a JSON object; restore it from a backup, or start a new run")
    for dotted, value in overrides.items():
        if dotted not in RESUMABLE_FIELDS:
            raise ConfigError(f"{dotted} cannot change on --resume; allowed: {', '.join(RESUMABLE_FIELDS)}")
        if value is not None:
            data = _with(data, dotted, value)
    return validate_config(data, origin=f"run configuration {path}")


def resume_run(
    run_dir: Path,
    data_dir: Path,
    overrides: dict[str, Any] | None = None,
    *,
    options: RunOptions = RunOptions(),
) -> RunOutcome:
    """Continue a run from ``checkpoints/last.pt`` to its configured end.

    Raises:
        RunBusyError: another live process is training into ``run_dir`` (its
            ``running.json``); nothing in the folder was touched. A marker whose process is
            gone is replaced.
    """
    dist = options.dist or Distributed()
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir, overrides or {})
    with _holding(run_dir, dist):
        last_path = run_dir / CHECKPOINT_DIR / LAST
        if not last_path.is_file():
            raise CheckpointError(f"{run_dir} has no {CHECKPOINT_DIR}/{LAST} to resume from; start a new run")
        checkpoint = _load_last(last_path)
        state = FitState.from_dict(checkpoint["state"])
        extended = _extends(cfg, state)
        if state.done and not extended and (run_dir / "summary.json").is_file():
            summary = upgrade_summary(json.loads((run_dir / "summary.json").read_text(encoding="utf-8")))
            return RunOutcome(run_dir, summary, already_finished=True)
        if extended:
            checkpoint["state"] = {**checkpoint["state"], "stop": None, "done": False}
        if overrides and dist.is_main:
            atomic_write_json(run_dir / "config.json", cfg.model_dump(mode="json"))
        plan = plan_run(cfg, data_dir, options.notify, dist, raw_md5s=_started_on(run_dir, checkpoint, cfg))
        if plan.prepared.data_md5()["features"] != checkpoint["data_md5"]["features"]:
            raise CheckpointError(
                f"the feature file changed since this run's checkpoint (md5 "
                f"{checkpoint['data_md5']['features'][:12]} then, {plan.prepared.data_md5()['features'][:12]} "
                "now); resuming would train on different data: start a new run instead"
            )
        summary = _execute(plan, run_dir, checkpoint, options)
        return RunOutcome(run_dir, summary)


def _load_last(path: Path) -> dict[str, Any]:
    """``last.pt``; when it is damaged, the error says whether ``last.prev.pt`` can stand in."""
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        previous = path.with_name(LAST_PREV)
        try:
            step = load_checkpoint(previous)["step"]
        except CheckpointError:
            raise exc from None
        raise CheckpointError(
            f"{exc}. The previous checkpoint {previous.name} (step {step}) is intact: to resume from it, "
            f"copy it over {path.name} (cp {previous} {path}) and run --resume again"
        ) from None


def _started_on(run_dir: Path, checkpoint: dict[str, Any], cfg: RunConfig) -> dict[str, str]:
    """The raw version (md5) of each ticker the run started with: its data.json, else its checkpoint."""
    recorded = None
    try:
        recorded = json.loads((run_dir / RUN_DATA_FILE).read_text(encoding="utf-8")).get("raw")
    except (OSError, ValueError, AttributeError):
        pass
    if not isinstance(recorded, dict):
        raw = checkpoint.get("data_md5", {}).get("raw")
        recorded = {cfg.data.tickers[0]: raw} if isinstance(raw, str) else raw
    return {t: m for t, m in (recorded or {}).items() if isinstance(t, str) and isinstance(m, str)}


def _extends(cfg: RunConfig, state: FitState) -> bool:
    """True when a finished run was given more epochs or steps than it ran."""
    more_epochs = state.epoch < cfg.train.epochs
    more_steps = cfg.train.max_steps is not None and state.step < cfg.train.max_steps
    match state.stop:
        case StopReason.MAX_STEPS:
            return more_steps
        case StopReason.EPOCHS:
            return more_epochs
        case _:  # not finished, or stopped early: more epochs would not help
            return False
