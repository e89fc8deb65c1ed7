"""The training loop: one readable ``fit()`` with small helpers around it.

``fit`` reads top to bottom: ask the thermal gate, take one ``train_step``, log the loss meter's
mean every ``log_every`` steps, validate and checkpoint at the end of each epoch. Batches are
index gathers on window tensors that live on the device; the only host syncs are at logging
steps. Exact-resume checkpoints hold the weights, the optimizer, the schedule, the RNG states
and a :class:`FitState`; training stops cleanly on Ctrl-C or a thermal critical.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, Protocol

import numpy as np
import torch
from torch import nn

from fintrain.config import TrainConfig
from fintrain.device import manual_seed_all, memory_in_use, rng_state, set_rng_state, synchronize
from fintrain.errors import FintrainError, TrainingStopped
from fintrain.records import EpochRecord, Event, EventRecord, PhaseRecord, StatusRecord, TrainRecord
from fintrain.tracking.sink import MetricSink
from fintrain.train.checkpoint import BEST, LAST, save_checkpoint
from fintrain.train.distributed import Decision, Distributed, wrap_model
from fintrain.evaluate.metrics import improves, is_classification, primary_metric, task_metrics

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]  # (batches done, batches in all)

# Seconds between the panel's running figures (loss, learning rate, samples/s) between train
# records: each costs one host sync, so once every few seconds is free at any step rate.
LIVE_EVERY_S = 2.0


class WindowSet(Protocol):
    """What the loop needs of a split (see ``fintrain.dataset``)."""

    @property
    def labels(self) -> torch.Tensor: ...

    def __len__(self) -> int: ...

    def batch_indices(self, batch_size: int, shuffle: bool, seed: int, epoch: int) -> list[torch.Tensor]: ...

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class ThermalSource(Protocol):
    """What the loop needs of a thermal monitor: its latest status (``ThermalStatus``)."""

    def status(self) -> Any: ...


@dataclass(frozen=True)
class FitData:
    """The windows ``fit`` trains and validates on, the task their labels follow, and the
    validation measure that picks the best epoch (``loss`` or a metric name, see
    ``fintrain.evaluate.selection_metric``): early stopping and ``best.pt`` follow it."""

    train: WindowSet
    val: WindowSet
    task: str
    select: str = "loss"


class StopReason(StrEnum):
    """Why a run ended normally (Ctrl-C and thermal stops raise ``TrainingStopped`` instead)."""

    EPOCHS = "epochs"
    MAX_STEPS = "max_steps"
    EARLY_STOPPING = "early_stopping"

    def describe(self, cfg: TrainConfig) -> str:
        """In words, with the setting that ended the run: ``max_steps=200``."""
        match self:
            case StopReason.EPOCHS:
                return f"epochs={cfg.epochs}"
            case StopReason.MAX_STEPS:
                return f"max_steps={cfg.max_steps}"
            case StopReason.EARLY_STOPPING:
                return f"early stopping (patience {cfg.patience})"

    @classmethod
    def from_text(cls, text: str) -> StopReason:
        """The reason of a checkpoint written before the enum, which held ``describe``'s words."""
        head = text.split("=")[0].split(" ")[0]
        return cls.EARLY_STOPPING if head == "early" else cls(head)


@dataclass
class FitState:
    """Progress that a checkpoint carries besides weights, optimizer, schedule and RNG states."""

    step: int = 0
    epoch: int = 0  # 0-based index of the epoch in progress (records number epochs from 1: epoch_number)
    batch_in_epoch: int = 0
    best_val: float = math.inf  # validation loss of the selected epoch
    best_epoch: int = -1  # 0-based index of the selected epoch; -1 before one (see best_epoch_number)
    best_metric: float | None = None  # validation primary metric of the selected epoch
    best_score: float | None = None  # the selection measure of the selected epoch
    bad_epochs: int = 0
    stop: StopReason | None = None
    train_seconds: float = 0.0
    samples_seen: int = 0
    paused_total_s: float = 0.0
    temp_max_c: float | None = None
    skipped_steps: int = 0  # optimizer steps skipped for a non-finite loss or gradient norm
    nonfinite_in_a_row: int = 0

    @property
    def done(self) -> bool:
        """True once the run reached its end (epochs, max_steps or early stopping)."""
        return self.stop is not None

    @property
    def epoch_number(self) -> int:
        """The epoch of the latest step, numbered from 1 as every output counts (1 before any step)."""
        return self.epoch + 1 if self.batch_in_epoch or self.step == 0 else self.epoch

    @property
    def best_epoch_number(self) -> int | None:
        """The selected epoch, numbered from 1; None while none was selected."""
        return self.best_epoch + 1 if self.best_epoch >= 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Plain values, which ``torch.load(weights_only=True)`` reads back."""
        data = asdict(self)
        data["stop"] = None if self.stop is None else str(self.stop)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitState:
        """Inverse of ``to_dict``; unknown keys are ignored, older checkpoints are read too."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("stop") is not None:
            values["stop"] = StopReason(values["stop"])
        elif data.get("done") and data.get("stop_reason"):  # written before StopReason
            values["stop"] = StopReason.from_text(data["stop_reason"])
        return cls(**values)


@dataclass
class FitResult:
    """What ``fit`` hands back."""

    state: FitState
    steps_per_epoch: int
    history: list[EpochRecord] = field(default_factory=list)


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Optimizer steps the run will take at most."""
    steps = cfg.epochs * steps_per_epoch
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def lr_factor(step: int, cfg: TrainConfig, total: int) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine decay to a floor.

    The warm-up takes ``cfg.warmup_steps`` but at most a tenth of the run, so a short run
    (``--max-steps 20``) still spends most of its steps at a useful learning rate.
    """
    warmup = min(cfg.warmup_steps, max(total // 10, 1)) if cfg.warmup_steps else 0
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant" or total <= warmup:
        return 1.0
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; biases, norms and the positional table get no weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "pos" in name else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def loss_function(task: str, pos_weight: torch.Tensor | None = None) -> LossFn:
    """BCE with logits for threshold and direction, MSE for return; ``(out (B,), y (B,))``."""
    if is_classification(task):
        bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        return lambda out, y: bce(out.float(), y)
    mse = nn.MSELoss()
    return lambda out, y: mse(out.float(), y)


def resolve_pos_weight(cfg: TrainConfig, task: str, train_labels: torch.Tensor) -> torch.Tensor | None:
    """The BCE positive-class weight: none, a number, or neg/pos of the training labels."""
    if cfg.pos_weight is None or not is_classification(task):
        return None
    if cfg.pos_weight == "auto":
        pos = float(train_labels.sum())
        neg = float(len(train_labels)) - pos
        value = neg / pos if pos > 0 else 1.0
    else:
        value = float(cfg.pos_weight)
    return torch.tensor(value, dtype=torch.float32, device=train_labels.device)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast when the run asks for it (it changes both speed and activation memory)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig
) -> torch.Tensor | None:
    """One optimizer step on one batch; returns the batch's mean loss (detached, on the device).

    Forward (under bf16 autocast when ``cfg.precision`` says so), loss, backward, gradient
    clipping at ``cfg.grad_clip``, optimizer step. When the loss or the gradient norm is NaN or
    infinite the optimizer step is skipped and None returned: one NaN batch would otherwise make
    every weight NaN. That check is the step's one host sync (as ``torch.amp.GradScaler``'s).
    """
    with _autocast(x.device, cfg.precision):
        out = model(x).reshape(-1)  # (B,)
    loss = loss_fn(out, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # An infinite max_norm measures the norm without clipping.
    norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf)
    # Under DDP the gradients (so the norm) are already all-reduced: every rank decides alike.
    if not bool(torch.isfinite(norm) & torch.isfinite(loss.detach())):
        optimizer.zero_grad(set_to_none=True)
        return None
    optimizer.step()
    return loss.detach()


def phase_progress(sink: MetricSink, step: int, what: str) -> Progress:
    """A ``progress`` callback that tells the sink's displays how far ``what`` got (``PhaseRecord``)."""
    return lambda done, total: sink.log(PhaseRecord(what, done, total), step)


@torch.no_grad()
def _forward(model: nn.Module, data: WindowSet, batch_size: int,
             progress: Progress | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One pass over a split in eval mode: each batch's float32 outputs (B,) and labels (B,).

    Always in float32, without autocast, whatever ``train.precision`` is: bf16 logits had 65
    distinct values in 1,000 windows, and the resulting ties moved the AUC by up to 0.008.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs, ys = [], []
    batches = data.batch_indices(batch_size, shuffle=False, seed=0, epoch=0)
    for i, idx in enumerate(batches):
        if progress is not None:
            progress(i, len(batches))
        x, y = data.gather(idx)
        with torch.autocast(device_type=device.type, enabled=False):  # even inside a caller's autocast
            outs.append(model(x).reshape(-1).float())
        ys.append(y)
    model.train(was_training)
    return outs, ys


def _on_host(task: str, outs: list[torch.Tensor], ys: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Outputs as probabilities (classification) or values, and labels, as float64 arrays."""
    if not outs:
        return np.zeros(0), np.zeros(0)
    if is_classification(task):
        outs = [torch.sigmoid(out) for out in outs]  # per batch, as the values were always computed
    return torch.cat(outs).cpu().double().numpy(), torch.cat(ys).cpu().double().numpy()


def predict(model: nn.Module, data: WindowSet, batch_size: int, task: str,
            progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs (probabilities or values) and labels for a whole split, on the host, in float32.

    ``progress(done, total)`` is called before each batch (see :func:`phase_progress`).
    """
    return _on_host(task, *_forward(model, data, batch_size, progress))


def evaluate(model: nn.Module, data: WindowSet, batch_size: int, task: str, loss_fn: LossFn,
             progress: Progress | None = None) -> dict[str, float]:
    """Loss and task metrics of a split, from the one pass that ``predict`` makes (float32)."""
    outs, ys = _forward(model, data, batch_size, progress)
    total = torch.zeros((), device=next(model.parameters()).device)
    for out, y in zip(outs, ys, strict=True):
        total += loss_fn(out, y) * len(y)  # the sample-weighted mean over batches
    metrics = {"loss": float(total) / max(sum(len(y) for y in ys), 1)}
    if outs:
        output, labels = _on_host(task, outs, ys)
        metrics.update(task_metrics(task, labels, output))
    return metrics


class LossMeter:
    """A sample-weighted mean loss kept on the device: adding never syncs with the host."""

    def __init__(self, device: torch.device):
        self.total = torch.zeros((), device=device)
        self.n = 0

    def add(self, loss: torch.Tensor, n: int) -> None:
        """Count a batch of ``n`` samples whose mean loss is ``loss``."""
        self.total.add_(loss, alpha=n)  # one op
        self.n += n

    def absorb(self, other: LossMeter) -> None:
        """Take over another meter's samples and empty it."""
        self.total.add_(other.total)
        self.n += other.n
        other.reset()

    def reset(self) -> None:
        """Forget every sample."""
        self.total.zero_()
        self.n = 0

    def local_mean(self) -> float | None:
        """This rank's mean (one host sync, no collective); None if empty. For the panel."""
        return float(self.total) / self.n if self.n else None

    def mean(self, dist: Distributed) -> float | None:
        """The mean over every rank's samples (one collective and one host sync); None if empty."""
        total, n = dist.sum(self.total, torch.tensor(float(self.n), device=self.total.device))
        return float(total) / float(n) if float(n) else None


class _CtrlC:
    """Turns the first Ctrl-C into a flag checked between steps; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _event(sink: MetricSink, state: FitState, event: Event, message: str, *, epoch: int | None = None,
           **extra: Any) -> None:
    """An event record at the state's step, in the epoch of its latest step unless ``epoch`` says."""
    sink.log(EventRecord(event, state.epoch_number if epoch is None else epoch, state.step, message, extra), state.step)


def _status(sink: MetricSink, state: FitState, status: Any, device: torch.device, *, time_s: float | None = None,
            paused_s: float = 0.0, **figures: float | None) -> None:
    """A status record for the panel: running (with ``time_s``, and the running ``loss``, ``lr``
    and ``throughput`` when given) or paused for ``paused_s``."""
    running = time_s is not None
    record = StatusRecord.of("running" if running else "paused", paused_s, status, memory_in_use(device), time_s,
                             **figures)
    sink.log(record, state.step)


class ThermalGate:
    """Asked once per step whether training goes on: run, stop (thermal) or interrupt (Ctrl-C).

    The gate polls the monitor (rank 0's) and the Ctrl-C flag, makes the ranks agree, and waits
    out a thermal pause itself: it sends the pause and resume events, keeps the panel alive
    with ``paused`` status records, and adds the pause to ``state.paused_total_s``. Use it as a
    context manager: inside, the first Ctrl-C is a request checked at the next step.
    """

    poll_s = 0.05  # between polls while paused

    def __init__(self, monitor: ThermalSource | None, sink: MetricSink, dist: Distributed, device: torch.device):
        self.monitor = monitor if dist.is_main else None
        self.sink, self.dist, self.device = sink, dist, device
        self.status: Any = None  # the latest thermal status (None without a monitor, and on rank > 0)
        self.log_now = False  # the ranks agreed that this step logs by time (train.log_every_s)
        self._shown: Any = None
        self._ctrl_c = _CtrlC()

    def __enter__(self) -> ThermalGate:
        self._ctrl_c.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctrl_c.__exit__(*exc)

    def check(self, state: FitState, log_due: bool = False) -> Decision:
        """RUN, STOP or INTERRUPT, agreed by all ranks; a pause is waited out first.

        ``log_due`` is rank 0's clock saying the coming step should log by time; ``log_now``
        holds what the ranks agreed on it.
        """
        decision = self._poll(state, log_due)
        return self._wait_out_pause(state) if decision is Decision.PAUSE else decision

    def new_sample(self) -> bool:
        """True once per new thermal status, so the panel shows a sample when it arrives."""
        fresh = self.status is not None and self.status is not self._shown
        self._shown = self.status
        return fresh

    def _poll(self, state: FitState, log_due: bool = False) -> Decision:
        self.status = self.monitor.status() if self.monitor is not None else None
        thermal = Decision.RUN
        if self.status is not None:
            thermal = Decision[self.status.action.upper()]
            if self.status.temp_c is not None:
                state.temp_max_c = max(state.temp_max_c or self.status.temp_c, self.status.temp_c)
        decision, self.log_now = self.dist.agree(self._ctrl_c.requested, thermal, log_due)
        return decision

    def _wait_out_pause(self, state: FitState) -> Decision:
        if self.status is not None:
            _event(self.sink, state, Event.THERMAL_PAUSE, self.status.reason, temp_c=self.status.temp_c)
        started = time.monotonic()
        while (decision := self._poll(state)) is Decision.PAUSE:
            _status(self.sink, state, self.status, self.device, paused_s=time.monotonic() - started)
            time.sleep(self.poll_s)
        paused_s = time.monotonic() - started
        state.paused_total_s += paused_s
        if decision is Decision.RUN and self.status is not None:
            _event(self.sink, state, Event.THERMAL_RESUME, f"resumed after {paused_s:.0f} s at "
                   f"{_fmt_temp(self.status.temp_c)}", paused_s=paused_s, temp_c=self.status.temp_c)
        return decision


@dataclass
class Checkpointer:
    """Writes ``last.pt``/``best.pt`` with what the run adds (config, scaler, data md5)."""

    folder: Path
    extra: dict[str, Any]

    def save(
        self,
        name: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        state: FitState,
        rng_ranks: list[dict[str, Any]] | None = None,
    ) -> Path:
        """Save model, optimizer, scheduler, progress and RNG states.

        ``rng_ranks`` holds every rank's RNG state under torchrun (``rng`` is this process's),
        so that each rank of a resumed run draws the dropout masks it would have drawn.
        """
        path = self.folder / name
        rng = rng_state()
        save_checkpoint(
            path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": state.to_dict(),
                "step": state.step,
                "epoch": state.epoch,
                "rng": rng,
                "rng_ranks": rng_ranks if rng_ranks is not None else [rng],
                **self.extra,
            },
        )
        return path


@dataclass
class _Saver:
    """Checkpoints of this run's model, optimizer and schedule, announced on the sink.

    Every rank calls it at the same step (the RNG states are gathered from all of them); only
    rank 0 writes. ``last_step`` is the step whose state ``last.pt`` already holds (the step
    resumed from, or the latest save), so a Ctrl-C or thermal stop right after a save does not
    write the same state again.
    """

    checkpointer: Checkpointer
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sink: MetricSink
    dist: Distributed
    last_step: int | None = None

    def last(self, state: FitState, reason: str) -> None:
        """Save ``last.pt``; ``reason`` goes into the checkpoint event. Skipped (on every rank
        alike, as they all hold the same step) when ``last.pt`` holds this step's state already."""
        if self.last_step == state.step and not state.done:
            return
        self.last_step = state.step
        if (path := self._save(LAST, state, write=True)) is not None:
            _event(self.sink, state, Event.CHECKPOINT, f"saved {path.name} at step {state.step} ({reason})", path=str(path))

    def best(self, state: FitState, improved: bool, select: str) -> None:
        """Save ``best.pt`` when validation improved (gathered on every rank either way)."""
        if (path := self._save(BEST, state, write=improved)) is not None:
            _event(self.sink, state, Event.BEST, f"new best validation {select} {state.best_score:.5f}", path=str(path))

    def _save(self, name: str, state: FitState, write: bool) -> Path | None:
        rng_ranks = self.dist.all_gather(rng_state())
        if not (write and self.dist.is_main):
            return None
        return self.checkpointer.save(name, self.model, self.optimizer, self.scheduler, state, rng_ranks)


def _restore(resume: dict[str, Any] | None, saver: _Saver, seed: int) -> FitState:
    """The progress to start from, with weights, optimizer, schedule and RNG restored."""
    dist = saver.dist
    if resume is None:
        if dist.rank > 0:
            # Every rank was seeded alike (for identical initial weights); from here each draws
            # its own dropout masks, as one process over the whole batch would.
            manual_seed_all((seed + (dist.rank << 32)) % 2**64)
        return FitState()
    saver.model.load_state_dict(resume["model"])
    saver.optimizer.load_state_dict(resume["optimizer"])
    saver.scheduler.load_state_dict(resume["scheduler"])
    state = FitState.from_dict(resume["state"])
    saver.last_step = state.step  # last.pt holds this state: a stop before the next step need not save it
    set_rng_state(_rank_rng(resume, dist))
    # The epoch training continues in: the next one when last.pt was saved at an epoch's end.
    _event(saver.sink, state, Event.RESUMED, f"resumed at step {state.step} (epoch {state.epoch + 1})",
           epoch=state.epoch + 1)
    return state


def _validate(model: nn.Module, data: FitData, cfg: TrainConfig, loss_fn: LossFn, state: FitState,
              train_loss: float | None, sink: MetricSink) -> tuple[EpochRecord, bool]:
    """The epoch record after validating, and whether validation improved (``state`` updated)."""
    trained_epoch = state.epoch_number
    progress = phase_progress(sink, state.step, f"validating epoch {trained_epoch}")
    metrics = evaluate(model, data.val, _batch_size(cfg), data.task, loss_fn, progress)
    metric = primary_metric(data.task)
    best = state.best_score
    if best is None and data.select == "loss" and state.best_epoch >= 0:
        best = state.best_val  # a checkpoint from before best_score: it was selected on loss
    improved = improves(data.select, metrics.get(data.select), best)
    if improved:
        state.best_val, state.best_epoch, state.best_metric = metrics["loss"], trained_epoch - 1, metrics.get(metric)
        state.best_score = metrics[data.select]
        state.bad_epochs = 0
    else:
        state.bad_epochs += 1
    record = EpochRecord(trained_epoch, state.step, train_loss, metrics, metric, state.best_metric,
                         state.best_epoch_number, state.train_seconds)
    return record, improved


def _stop(decision: Decision, gate: ThermalGate, state: FitState, saver: _Saver) -> NoReturn:
    """Save ``last.pt``, say why, and raise ``TrainingStopped`` (130 for Ctrl-C, 3 for heat)."""
    if decision is Decision.INTERRUPT:
        saver.last(state, "interrupted")
        _event(saver.sink, state, Event.INTERRUPTED, f"interrupted at step {state.step}")
        raise TrainingStopped(f"interrupted at step {state.step}", exit_code=130)
    status = gate.status
    reason = status.reason if status is not None else "rank 0 stopped"
    saver.last(state, "thermal stop")
    _event(saver.sink, state, Event.THERMAL_STOP, reason, temp_c=status.temp_c if status else None)
    raise TrainingStopped(f"thermal critical at step {state.step} ({reason}); last.pt saved, resume with "
                          "--resume when the machine has cooled", exit_code=3)


def _skipped(state: FitState, cfg: TrainConfig, sink: MetricSink) -> None:
    """Count an optimizer step skipped for a non-finite loss or gradient norm; stop after too many."""
    state.skipped_steps += 1
    state.nonfinite_in_a_row += 1
    step = state.step + 1  # the step being taken
    _event(sink, state, Event.NONFINITE, f"non-finite loss or gradient norm at step {step}: optimizer step skipped "
           f"({state.nonfinite_in_a_row} in a row, {state.skipped_steps} in all)")
    if state.nonfinite_in_a_row >= cfg.max_nonfinite_steps:
        raise FintrainError(
            f"training stopped: {state.nonfinite_in_a_row} optimizer steps in a row (to step {step}) had a "
            f"non-finite loss or gradient norm (train.max_nonfinite_steps={cfg.max_nonfinite_steps}); the weights "
            "were left as they were. Lower --lr, check the data with `fintrain data verify`, or resume from "
            "last.pt with a higher train.max_nonfinite_steps"
        )


def _batch_size(cfg: TrainConfig) -> int:
    if not isinstance(cfg.batch_size, int):
        raise ValueError("fit needs a resolved batch size, not 'auto' (see fintrain.train.run.resolve_batch_size)")
    return cfg.batch_size


def _train_clock(state: FitState) -> float:
    """Seconds that exclude thermal pauses: the loop's training time is measured on this."""
    return time.monotonic() - state.paused_total_s


def fit(
    model: nn.Module,
    data: FitData,
    cfg: TrainConfig,
    sink: MetricSink,
    checkpointer: Checkpointer,
    *,
    monitor: ThermalSource | None = None,
    resume: dict[str, Any] | None = None,
    dist: Distributed | None = None,
) -> FitResult:
    """Train ``model`` on ``data.train``, validate on ``data.val`` each epoch, checkpoint, early-stop.

    Args:
        model: on its device already, float32.
        data: the training and validation windows and the task.
        cfg: the train section of the run's configuration, its batch size resolved.
        sink: receives train, epoch, event and status records.
        checkpointer: where ``last.pt`` and ``best.pt`` go.
        monitor: a thermal monitor with ``status()``, or None.
        resume: a loaded checkpoint to continue from.
        dist: this process's rank under torchrun; each global batch is split between the
            ranks, and only rank 0 checkpoints (give the other ranks a null sink).

    Raises:
        TrainingStopped: on Ctrl-C (exit code 130) or a thermal stop (exit code 3), after
            ``last.pt`` was saved.
    """
    dist = dist or Distributed()
    device = next(model.parameters()).device
    net = wrap_model(model, dist, device)
    batch_size = _batch_size(cfg)
    steps_per_epoch = len(data.train.batch_indices(batch_size, shuffle=True, seed=cfg.seed, epoch=0))
    if steps_per_epoch == 0:
        raise FintrainError("the training split has no windows; use more data or a shorter context")
    optimizer = make_optimizer(model, cfg)
    total = total_steps(cfg, steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, total))
    loss_fn = loss_function(data.task, resolve_pos_weight(cfg, data.task, data.train.labels))
    saver = _Saver(checkpointer, model, optimizer, scheduler, sink, dist)
    state = _restore(resume, saver, cfg.seed)
    result = FitResult(state=state, steps_per_epoch=steps_per_epoch)
    epoch_loss, window_loss = LossMeter(device), LossMeter(device)
    first_step, live_at = state.step + 1, -math.inf  # the panel's running figures: after the first step, then by time
    model.train()
    with ThermalGate(monitor, sink, dist, device) as gate:
        while not state.done and state.epoch < cfg.epochs:
            order = data.train.batch_indices(batch_size, shuffle=True, seed=cfg.seed, epoch=state.epoch)
            if state.batch_in_epoch == 0:
                epoch_loss.reset()
            window_loss.reset()  # the steps since the last train record
            window_start, window_samples = _train_clock(state), state.samples_seen
            reached_max = False
            for b in range(state.batch_in_epoch, len(order)):
                log_due = _train_clock(state) - window_start >= cfg.log_every_s  # a slow model logs by time too
                if (decision := gate.check(state, log_due)) is not Decision.RUN:
                    _stop(decision, gate, state, saver)
                if gate.new_sample():  # the panel shows it now, not at the next log step
                    time_s = state.train_seconds + _train_clock(state) - window_start
                    _status(sink, state, gate.status, device, time_s=time_s)
                x, y = data.train.gather(dist.shard(order[b]))
                if (loss := train_step(net, optimizer, loss_fn, x, y, cfg)) is None:
                    _skipped(state, cfg, sink)
                else:
                    state.nonfinite_in_a_row = 0
                    window_loss.add(loss, len(y))
                    scheduler.step()  # the schedule counts the updates made
                state.step, state.batch_in_epoch = state.step + 1, b + 1
                state.samples_seen += len(order[b])  # the global batch
                reached_max = bool(cfg.max_steps and state.step >= cfg.max_steps)
                last_of_epoch = b == len(order) - 1
                if state.step % cfg.log_every == 0 or gate.log_now or reached_max or last_of_epoch:
                    synchronize(device)
                    mean_loss = window_loss.mean(dist)
                    seconds = _train_clock(state) - window_start
                    state.train_seconds += seconds
                    throughput = (state.samples_seen - window_samples) / max(seconds, 1e-9)
                    temp_c = gate.status.temp_c if gate.status else None
                    sink.log(TrainRecord(state.epoch_number, state.step, mean_loss, scheduler.get_last_lr()[0], throughput, temp_c,
                                         state.train_seconds), state.step)
                    epoch_loss.absorb(window_loss)
                    window_start, window_samples = _train_clock(state), state.samples_seen
                    _status(sink, state, gate.status, device, time_s=state.train_seconds)
                elif dist.is_main and (state.step == first_step or time.monotonic() - live_at >= LIVE_EVERY_S):
                    live_at = time.monotonic()
                    seconds = _train_clock(state) - window_start
                    _status(sink, state, gate.status, device, time_s=state.train_seconds + seconds,
                            loss=window_loss.local_mean(), lr=scheduler.get_last_lr()[0],
                            throughput=(state.samples_seen - window_samples) / max(seconds, 1e-9))
                if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and not (last_of_epoch or reached_max):
                    saver.last(state, f"every {cfg.checkpoint_every} steps")
                if reached_max:
                    break
            if state.batch_in_epoch >= len(order):
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            record, improved = _validate(model, data, cfg, loss_fn, state, epoch_loss.mean(dist), sink)
            result.history.append(record)
            sink.log(record, state.step)
            saver.best(state, improved, data.select)
            if reached_max:
                state.stop = StopReason.MAX_STEPS
            elif state.bad_epochs >= cfg.patience:
                state.stop = StopReason.EARLY_STOPPING
                _event(sink, state, Event.EARLY_STOP, f"no validation improvement for {cfg.patience} epochs")
            elif state.epoch >= cfg.epochs:
                state.stop = StopReason.EPOCHS
            saver.last(state, "finished" if state.done else "end of epoch")
    return result


def _rank_rng(checkpoint: dict[str, Any], dist: Distributed) -> dict[str, Any]:
    """This rank's RNG state from a checkpoint: its own when the number of ranks is unchanged."""
    ranks = checkpoint.get("rng_ranks")
    if ranks is not None and len(ranks) == dist.world_size:
        return ranks[dist.rank]
    if dist.enabled or (ranks is not None and len(ranks) > 1):
        log.warning("the checkpoint was saved by %s rank(s) and is resumed by %d: every rank "
                    "takes rank 0's RNG state, so dropout draws differ from an uninterrupted run",
                    len(ranks) if ranks is not None else "an unknown number of", dist.world_size)
    return checkpoint["rng"]


def _fmt_temp(value: float | None) -> str:
    return "no reading" if value is None else f"{value:.0f} C"
