"""How long a run will take, from a few real training steps: what ``--dry-run`` prints.

One place times steps for ``fintrain train --dry-run`` and ``fintrain sweep --dry-run``: a warm-up
step, then a few timed steps of ``train_step`` on the run's own model, batch and device, and one
timed validation batch. Nothing is written.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from torch import nn

from fintrain.config import TrainConfig
from fintrain.device import synchronize
from fintrain.train.loop import WindowSet, loss_function, make_optimizer, predict, train_step


@dataclass(frozen=True)
class StepTiming:
    """Seconds per training step and per evaluation batch, measured at one batch size."""

    step_s: float
    eval_batch_s: float
    steps_timed: int


def time_steps(model: nn.Module, train: WindowSet, val: WindowSet, cfg: TrainConfig, task: str, *,
               steps: int = 3, warmup: int = 1) -> StepTiming:
    """Time ``steps`` training steps after ``warmup`` untimed ones, and one evaluation batch.

    The steps are ``fit``'s (gather, forward under the run's precision, loss, backward,
    clipping, AdamW) on the first batch of the first shuffled epoch; the model's weights move,
    so give it a model nobody trains afterwards. ``cfg.batch_size`` must be resolved.
    """
    batch_size = int(cfg.batch_size)  # type: ignore[arg-type]
    device = next(model.parameters()).device
    model.train()
    optimizer = make_optimizer(model, cfg)
    loss_fn = loss_function(task)
    idx = train.batch_indices(batch_size, shuffle=True, seed=cfg.seed, epoch=0)[0]
    timed: list[float] = []
    for i in range(warmup + steps):
        started = time.perf_counter()
        x, y = train.gather(idx)
        train_step(model, optimizer, loss_fn, x, y, cfg)
        synchronize(device)
        if i >= warmup:
            timed.append(time.perf_counter() - started)
    eval_s = 0.0
    if len(val):
        one = _OneBatch(val, batch_size)
        started = time.perf_counter()
        predict(model, one, batch_size, task)
        synchronize(device)
        eval_s = time.perf_counter() - started
    return StepTiming(sorted(timed)[len(timed) // 2], eval_s, steps)


class _OneBatch:
    """The first batch of a split, as a split (``_forward`` takes splits)."""

    def __init__(self, windows: WindowSet, batch_size: int):
        self.windows, self.batch_size = windows, batch_size

    def batch_indices(self, batch_size: int, shuffle: bool, seed: int, epoch: int) -> list:
        return self.windows.batch_indices(batch_size, shuffle=False, seed=0, epoch=0)[:1]

    def gather(self, idx):  # noqa: ANN001, ANN201
        return self.windows.gather(idx)


def estimate_seconds(timing: StepTiming, total_steps: int, steps_per_epoch: int, val_batches: int,
                     test_batches: int) -> float:
    """Training steps, a validation pass per epoch trained, and the end's passes over validation and
    test (test metrics, predictions); baselines and the bootstrap are not counted."""
    epochs = math.ceil(total_steps / max(steps_per_epoch, 1))
    eval_batches = epochs * val_batches + val_batches + 2 * test_batches
    return total_steps * timing.step_s + eval_batches * timing.eval_batch_s
