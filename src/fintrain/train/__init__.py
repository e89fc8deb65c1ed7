"""Training: the fit loop, checkpoints, metrics and baselines, device helpers.

Whole runs (data, model, run folder) are in ``fintrain.train.run``.
"""

from fintrain.train.loop import (
    Checkpointer,
    FitResult,
    FitState,
    MetricSink,
    TrainingStopped,
    evaluate,
    fit,
    loss_function,
    lr_factor,
    make_optimizer,
)

__all__ = [
    "Checkpointer",
    "FitResult",
    "FitState",
    "MetricSink",
    "TrainingStopped",
    "evaluate",
    "fit",
    "loss_function",
    "lr_factor",
    "make_optimizer",
]
