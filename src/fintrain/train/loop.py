"""The training loop: one readable ``fit()`` with small pure helpers around it.

Batches are index gathers on window tensors that live on the device; the only host syncs are
at logging steps. The loop asks the thermal monitor one question per step, saves exact-resume
checkpoints, and stops cleanly on Ctrl-C or a thermal critical.
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
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from fintrain.config import TrainConfig
from fintrain.errors import FintrainError, TrainingStopped
from fintrain.tracking.sink import MetricSink
from fintrain.train.checkpoint import BEST, LAST, save_checkpoint
from fintrain.device import (
    manual_seed_all,
    memory_in_use,
    rng_state,
    set_rng_state,
    synchronize,
)
from fintrain.train.distributed import (
    INTERRUPT,
    PAUSE,
    RUN,
    STOP,
    Distributed,
    wrap_model,
)
from fintrain.train.metrics import is_classification, primary_metric, task_metrics

log = logging.getLogger(__name__)


class WindowSet(Protocol):
    """What the loop needs of a split (see ``fintrain.dataset``)."""

    def __len__(self) -> int: ...

    def batch_indices(self, batch_size: int, shuffle: bool, seed: int, epoch: int) -> list[torch.Tensor]: ...

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class FitState:
    """Progress that a checkpoint carries besides weights and optimizer state."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    best_metric: float | None = None
    bad_epochs: int = 0
    done: bool = False
    stop_reason: str = ""
    train_seconds: float = 0.0
    samples_seen: int = 0
    paused_total_s: float = 0.0
    temp_max_c: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values, which ``torch.load(weights_only=True)`` reads back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitState:
        """Inverse of ``to_dict``; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class FitResult:
    """What ``fit`` hands back."""

    state: FitState
    steps_per_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


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


def loss_function(task: str, pos_weight: torch.Tensor | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
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


@torch.no_grad()
def predict(model: nn.Module, data: WindowSet, batch_size: int, task: str, precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Model outputs (probabilities or values) and labels for a whole split, on the host."""
    was_training = model.training
    model.eval()
    outs, ys = [], []
    device = next(model.parameters()).device
    for idx in data.batch_indices(batch_size, shuffle=False, seed=0, epoch=0):
        x, y = data.gather(idx)
        with _autocast(device, precision):
            out = model(x).reshape(-1).float()
        outs.append(torch.sigmoid(out) if is_classification(task) else out)
        ys.append(y)
    model.train(was_training)
    if not outs:
        return np.zeros(0), np.zeros(0)
    return torch.cat(outs).cpu().double().numpy(), torch.cat(ys).cpu().double().numpy()


@torch.no_grad()
def evaluate(model: nn.Module, data: WindowSet, batch_size: int, task: str, loss_fn: Callable, precision: str = "fp32") -> dict[str, float]:
    """Loss and task metrics of a split, from one pass over it."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros((), device=device)
    outs, ys = [], []
    with torch.no_grad():
        for idx in data.batch_indices(batch_size, shuffle=False, seed=0, epoch=0):
            x, y = data.gather(idx)
            with _autocast(device, precision):
                out = model(x).reshape(-1).float()
            total += loss_fn(out, y) * len(y)
            outs.append(torch.sigmoid(out) if is_classification(task) else out)
            ys.append(y)
    model.train(was_training)
    n = sum(len(y) for y in ys)
    metrics = {"loss": float(total) / max(n, 1)}
    if outs:
        output = torch.cat(outs).cpu().double().numpy()
        labels = torch.cat(ys).cpu().double().numpy()
        metrics.update(task_metrics(task, labels, output))
    return metrics


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class _StopRequest:
    """Turns the first Ctrl-C into a flag checked between steps; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopRequest:
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


def _thermal_record(status: Any) -> dict[str, Any]:
    if status is None:
        return {"thermal/temp_c": None, "thermal/band": "off"}
    return {
        "thermal/temp_c": status.temp_c,
        "thermal/temp_max_c": status.temp_max_c,
        "thermal/hottest_c": status.hottest_c,
        "thermal/band": status.band,
        "thermal/trend": status.trend,
    }


def fit(
    model: nn.Module,
    train: WindowSet,
    val: WindowSet,
    cfg: TrainConfig,
    task: str,
    sink: MetricSink,
    checkpointer: Checkpointer,
    *,
    batch_size: int,
    monitor: Any = None,
    resume: dict[str, Any] | None = None,
    pos_weight: torch.Tensor | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    step_hook: Callable[[FitState], None] | None = None,
    dist: Distributed | None = None,
) -> FitResult:
    """Train ``model`` on ``train``, validate on ``val`` each epoch, checkpoint, early-stop.

    Args:
        model: on its device already, float32.
        train, val: window sets (``fintrain.dataset``).
        cfg: the train section of the run's configuration.
        task: threshold, direction or return.
        sink: receives train, epoch, event and status records.
        checkpointer: where ``last.pt`` and ``best.pt`` go.
        batch_size: resolved batch size.
        monitor: a thermal monitor with ``status()``, or None.
        resume: a loaded checkpoint to continue from.
        step_hook: called after every optimizer step (tests use it to interrupt).
        dist: this process's rank under torchrun; each global batch is split between the
            ranks, and only rank 0 checkpoints (give the other ranks a null sink).

    Raises:
        TrainingStopped: on Ctrl-C (exit code 130) or a thermal stop (exit code 3), after
            ``last.pt`` was saved.
    """
    device = next(model.parameters()).device
    dist = dist or Distributed()
    net = wrap_model(model, dist, device)
    optimizer = make_optimizer(model, cfg)
    order0 = train.batch_indices(batch_size, shuffle=True, seed=cfg.seed, epoch=0)
    steps_per_epoch = len(order0)
    if steps_per_epoch == 0:
        raise FintrainError("the training split has no windows; use more data or a shorter context")
    total = total_steps(cfg, steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, total))
    loss_fn = loss_function(task, pos_weight)
    state = FitState()
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        state = FitState.from_dict(resume["state"])
        set_rng_state(_rank_rng(resume, dist))
        sink.log({"kind": "event", "event": "resumed", "epoch": state.epoch, "step": state.step,
                  "message": f"resumed at step {state.step} (epoch {state.epoch + 1})"}, state.step)
    elif dist.rank > 0:
        # Every rank was seeded alike (for identical initial weights); from here each draws its
        # own dropout masks, as one process over the whole batch would, not rank 0's again.
        manual_seed_all((cfg.seed + (dist.rank << 32)) % 2**64)
    metric = primary_metric(task)
    result = FitResult(state=state, steps_per_epoch=steps_per_epoch)
    model.train()

    def event(name: str, message: str, **extra: Any) -> None:
        record = {"kind": "event", "event": name, "epoch": state.epoch, "step": state.step, "message": message}
        record.update(extra)
        sink.log(record, state.step)

    def save_last(reason: str) -> None:
        rng_ranks = dist.all_gather(rng_state())  # every rank calls this at the same step
        if dist.is_main:
            path = checkpointer.save(LAST, model, optimizer, scheduler, state, rng_ranks)
            event("checkpoint", f"saved {path.name} at step {state.step} ({reason})", path=str(path))

    def validate_and_save() -> bool:
        """End-of-epoch work; returns True when early stopping says stop."""
        trained_epoch = state.epoch if state.batch_in_epoch else state.epoch - 1
        metrics = evaluate(model, val, batch_size, task, loss_fn, cfg.precision)
        improved = metrics["loss"] < state.best_val
        if improved:
            state.best_val = metrics["loss"]
            state.best_epoch = trained_epoch
            state.best_metric = metrics.get(metric)
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
        record = {"kind": "epoch", "epoch": trained_epoch, "step": state.step,
                  "train/loss": epoch_loss(), **{f"val/{k}": v for k, v in metrics.items()},
                  f"best/{metric}": state.best_metric, "best_epoch": state.best_epoch,
                  "time_s": state.train_seconds}
        result.history.append(record)
        sink.log(record, state.step)
        # Gathered on every rank whether or not it improved, so no rank waits in a collective
        # that another skipped.
        rng_ranks = dist.all_gather(rng_state())
        if improved and dist.is_main:
            path = checkpointer.save(BEST, model, optimizer, scheduler, state, rng_ranks)
            event("best", f"new best validation loss {state.best_val:.5f}", path=str(path))
        return state.bad_epochs >= cfg.patience

    epoch_sum = torch.zeros((), device=device)
    epoch_n = 0  # samples in epoch_sum (read by epoch_loss)

    def epoch_loss() -> float | None:
        total, n = dist.sum(epoch_sum, torch.tensor(float(epoch_n), device=device))
        return float(total) / float(n) if float(n) else None

    last_status = None

    def log_running_status() -> None:
        time_s = state.train_seconds + (clock() - t_log)  # training time so far, for the panel's ETA
        sink.log({"kind": "status", "state": "running", "paused_s": 0.0, "time_s": time_s,
                  **_thermal_record(last_status), "memory_bytes": memory_in_use(device)}, state.step)

    def poll() -> tuple[int, Any]:
        """This step's decision (agreed by all ranks) and rank 0's thermal status."""
        status = monitor.status() if monitor is not None and dist.is_main else None
        if status is not None and status.temp_c is not None:
            state.temp_max_c = max(state.temp_max_c or status.temp_c, status.temp_c)
        thermal = ACTION_CODES[status.action] if status is not None else RUN
        return dist.agree(stop_request.requested, thermal), status

    def wait_out_pause(status: Any) -> tuple[int, Any]:
        """Keep the panel alive while paused; return the decision that ended the pause."""
        if status is not None:
            event("thermal_pause", status.reason, temp_c=status.temp_c)
        started = clock()
        while True:
            code, status = poll()
            paused_s = clock() - started
            if code != PAUSE:
                state.paused_total_s += paused_s
                if code == RUN and status is not None:
                    event("thermal_resume", f"resumed after {paused_s:.0f} s at "
                          f"{_fmt_temp(status.temp_c)}", paused_s=paused_s, temp_c=status.temp_c)
                return code, status
            sink.log({"kind": "status", "state": "paused", "paused_s": paused_s,
                      **_thermal_record(status), "memory_bytes": memory_in_use(device)}, state.step)
            sleep(0.05)

    with _StopRequest() as stop_request:
        while not state.done and state.epoch < cfg.epochs:
            order = train.batch_indices(batch_size, shuffle=True, seed=cfg.seed, epoch=state.epoch)
            if state.batch_in_epoch == 0:
                epoch_sum.zero_()
                epoch_n = 0
            log_sum = torch.zeros((), device=device)
            log_n = 0
            t_log = clock()
            samples_since_log = 0
            reached_max = False
            for b in range(state.batch_in_epoch, len(order)):
                code, status = poll()
                if code == PAUSE:
                    state.train_seconds += clock() - t_log
                    code, status = wait_out_pause(status)
                    t_log = clock()
                if code == INTERRUPT:
                    save_last("interrupted")
                    event("interrupted", f"interrupted at step {state.step}")
                    raise TrainingStopped(f"interrupted at step {state.step}", exit_code=130)
                if code == STOP:
                    reason = status.reason if status is not None else "rank 0 stopped"
                    save_last("thermal stop")
                    event("thermal_stop", reason, temp_c=status.temp_c if status else None)
                    raise TrainingStopped(
                        f"thermal critical at step {state.step} ({reason}); last.pt saved, "
                        "resume with --resume when the machine has cooled", exit_code=3)
                if status is not None and status is not last_status:
                    last_status = status
                    log_running_status()  # a new sample: the panel shows it now, not at the next log step
                global_batch = len(order[b])
                x, y = train.gather(dist.shard(order[b]))
                with _autocast(device, cfg.precision):
                    out = net(x).reshape(-1)
                loss = loss_fn(out, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                state.step += 1
                state.batch_in_epoch = b + 1
                state.samples_seen += global_batch
                samples_since_log += global_batch
                log_sum.add_(loss.detach(), alpha=len(y))  # one op; folded into the epoch's at logging
                log_n += len(y)
                if step_hook is not None:
                    step_hook(state)
                reached_max = bool(cfg.max_steps and state.step >= cfg.max_steps)
                last_of_epoch = b == len(order) - 1
                if state.step % cfg.log_every == 0 or reached_max or last_of_epoch:
                    synchronize(device)
                    loss_total, loss_n = dist.sum(log_sum, torch.tensor(float(log_n), device=device))
                    now = clock()
                    state.train_seconds += now - t_log
                    throughput = samples_since_log / max(now - t_log, 1e-9)
                    sink.log({"kind": "train", "epoch": state.epoch, "step": state.step,
                              "train/loss": float(loss_total) / float(loss_n), "lr": scheduler.get_last_lr()[0],
                              "throughput": throughput,
                              "thermal/temp_c": last_status.temp_c if last_status else None,
                              "thermal/paused": 0, "time_s": state.train_seconds}, state.step)
                    epoch_sum.add_(log_sum)
                    epoch_n += log_n
                    log_sum.zero_()
                    log_n = 0
                    samples_since_log = 0
                    t_log = clock()
                    log_running_status()
                if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and not (last_of_epoch or reached_max):
                    save_last(f"every {cfg.checkpoint_every} steps")
                if reached_max:
                    break
            if state.batch_in_epoch >= len(order):
                state.epoch += 1
                state.batch_in_epoch = 0
            stop_early = validate_and_save()
            if reached_max:
                state.done, state.stop_reason = True, f"max_steps={cfg.max_steps}"
            elif stop_early:
                state.done, state.stop_reason = True, f"early stopping (patience {cfg.patience})"
                event("early_stop", f"no validation improvement for {cfg.patience} epochs")
            elif state.epoch >= cfg.epochs:
                state.done, state.stop_reason = True, f"epochs={cfg.epochs}"
            save_last("end of epoch" if not state.done else "finished")
    return result


ACTION_CODES = {"run": RUN, "pause": PAUSE, "stop": STOP}


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

