"""The probe on the real thing: the model, optimizer, loss and data that ``fintrain train`` uses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fintrain.config import ModelConfig, RunConfig, TrainConfig
from fintrain.device import device_label, free_memory, resolve_device, synchronize
from fintrain.model import build_model, model_config_for
from fintrain.probe.memory import meter_for
from fintrain.probe.search import ProbeResult, StepFactory, Trial, search_batch_size
from fintrain.train.batch_cache import store_result
from fintrain.train.loop import WindowSet, loss_function, make_optimizer, train_step
from fintrain.train.prepare import check_names, prepare_data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeRun:
    """A probe of a run configuration: the result and what it was measured on.

    Attributes:
        result: the trials and the recommendation.
        model_config: the model as ``train`` builds it for this configuration and data.
        n_train: training windows (no batch larger than this was tried).
        cache_file: where the result was cached (None when nothing fit).
    """

    result: ProbeResult
    model_config: ModelConfig
    n_train: int
    cache_file: Path | None


def training_step_factory(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    task: str,
    windows: WindowSet,
    device: torch.device,
    build_model: Callable[[ModelConfig, int, torch.device], nn.Module],
) -> StepFactory:
    """``make_step(batch_size)``: a fresh model and optimizer, and one full training step.

    The step is ``fit``'s: gather the windows, then :func:`~fintrain.train.loop.train_step`
    (forward under autocast for bf16, loss, backward, gradient clipping, AdamW step), then it
    synchronises the device so the caller's clock measures the work and not the queueing of it. The model and optimizer are
    new for every size, so the optimizer's state (two moments per parameter, allocated at the
    first step) counts in each trial's memory.
    """
    loss_fn = loss_function(task)

    def make_step(batch_size: int) -> Callable[[], None]:
        model = build_model(model_cfg, train_cfg.seed, device)
        model.train()
        optimizer = make_optimizer(model, train_cfg)
        # The first batch of a shuffled epoch: the same gather a training step performs.
        idx = windows.batch_indices(batch_size, shuffle=True, seed=train_cfg.seed, epoch=0)[0]

        def step() -> None:
            x, y = windows.gather(idx)  # (B, L, C), (B,)
            train_step(model, optimizer, loss_fn, x, y, train_cfg)
            synchronize(device)

        return step

    return make_step


def probe_batch(
    data_dir: Path,
    cfg: RunConfig,
    *,
    notify: Callable[[str], None] = log.info,
    on_start: Callable[[int], None] | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    on_retime: Callable[[int, int], None] | None = None,
) -> ProbeRun:
    """Probe the batch sizes for the model and data ``fintrain train`` would use with ``cfg``.

    Fetches the raw data and builds the features first when they are missing (as ``train``
    does), then searches with ``cfg.probe`` on ``cfg.train.device`` and caches the result for
    ``fintrain train --batch-size auto``.

    Args:
        data_dir: the workspace data folder.
        cfg: the run configuration (data, features, target, split, model, train, probe).
        notify: receives messages about fetching and building.
        on_start: called with each batch size before its trial.
        on_trial: called with each finished trial.
        on_retime: called with the size and the round before each visit of the re-timing.

    Returns:
        The result, the model config it was measured with, the training-set size and the
        cache file.

    Raises:
        FintrainError: unknown budget or tier, unavailable device, data problems.
    """
    check_names(cfg)
    device = resolve_device(cfg.train.device)
    prepared = prepare_data(Path(data_dir), cfg, device, notify)
    model_cfg = model_config_for(cfg, prepared.n_features)
    train = prepared.splits.train
    n_train = len(train)
    make_step = training_step_factory(model_cfg, cfg.train, cfg.target.task, train, device, build_model)
    result = search_batch_size(
        make_step,
        meter_for(device),
        cfg.probe,
        device=device_label(device),
        n_train=n_train,
        release=lambda: free_memory(device),
        on_start=on_start,
        on_trial=on_trial,
        on_retime=on_retime,
    )
    cache_file = store_result(device, model_cfg, result, n_train, cfg.train.precision)
    return ProbeRun(result, model_cfg, n_train, cache_file)
