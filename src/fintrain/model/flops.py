"""Training FLOPs of a PatchTST: what torch's ``FlopCounterMode`` counts in one training step.

``step_flops`` counts any step function (``benchmarks/throughput.py`` times and counts its
steps with it); ``training_flops_per_sample`` counts a forward and backward pass of a model
configuration on the meta device, so a 200m model costs neither memory nor time. The counter
sees the matrix multiplications (linear layers and attention's two batched products), forward
and backward, which are nearly all of the arithmetic; elementwise work, the norms and the
optimizer's update are not counted. (On the CPU the fused attention kernel is invisible to the
counter, so the meta device is also the more complete count: about 1% more for the 2m budget.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from fintrain.config import ModelConfig
from fintrain.model.patchtst import PatchTST

# FLOPs grow linearly with the batch: a few samples give the per-sample count exactly.
COUNT_BATCH = 8


def step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of ``step`` (matmuls and attention, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def training_flops_per_sample(model_cfg: ModelConfig) -> float:
    """FLOPs of one training sample's forward and backward pass through PatchTST(``model_cfg``).

    Example:
        >>> from fintrain.model import budget_config
        >>> round(training_flops_per_sample(budget_config("2m")) / 1e9, 2)  # 20 channels, context 60
        3.58
    """
    with torch.device("meta"):
        model = PatchTST(ModelConfig.model_validate({**model_cfg.model_dump(), "compile": False}))
        x = torch.zeros(COUNT_BATCH, model_cfg.context_len, model_cfg.n_channels)  # (B, L, C)

    def step() -> None:
        model(x).float().pow(2).mean().backward()

    return step_flops(step) / COUNT_BATCH
