"""Loss against training compute: one curve per model size and the compute-efficient frontier.

A run's training compute after optimizer step s is the FLOPs of one training sample's forward
and backward pass (``fintrain.model.flops``, counted by torch's ``FlopCounterMode`` as
``benchmarks/throughput.py`` counts them) times the samples it has trained on: whole epochs of
``windows.train`` samples, then ``batch_size`` a step (an epoch's last batch is the remainder).
Each epoch record of ``metrics.jsonl`` gives a point (cumulative FLOPs, validation loss); a
size's curve is the mean over its seeds at each step. The frontier is the lower envelope of all
the sizes' points: a point is on it when no point of any size reached a lower loss with no more
compute (Kaplan et al. 2020's compute-efficient frontier).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fintrain.config import validate_config
from fintrain.errors import FintrainError
from fintrain.experiments.axes import Group
from fintrain.experiments.runs import RunRecord, finite_value
from fintrain.features import feature_names
from fintrain.records import EpochRecord

log = logging.getLogger(__name__)

METHOD = ("training FLOPs = samples trained on x FLOPs of one sample's forward and backward pass (torch's "
          "FlopCounterMode on the model's shape, as benchmarks/throughput.py counts them: the matrix products "
          "of the linear layers and of attention); validation loss after each epoch, mean over seeds")


@dataclass(frozen=True)
class ComputeCurve:
    """One size's validation loss against cumulative training FLOPs."""

    label: str
    params: int
    flops_per_sample: float
    points: tuple[tuple[float, float], ...]  # (cumulative FLOPs, mean validation loss), by FLOPs
    seeds: int


@dataclass(frozen=True)
class ComputeStudy:
    """Every size's curve and the frontier across them (``frontier``: (FLOPs, loss, size label))."""

    curves: tuple[ComputeCurve, ...]
    frontier: tuple[tuple[float, float, str], ...]
    method: str = METHOD
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The study as plain JSON values (``report --json`` under ``compute``)."""
        return {
            "method": self.method,
            "curves": [{"value": c.label, "params": c.params, "flops_per_sample": c.flops_per_sample, "seeds": c.seeds,
                        "points": [{"flops": f, "val_loss": v} for f, v in c.points]} for c in self.curves],
            "frontier": [{"flops": f, "val_loss": v, "value": label} for f, v, label in self.frontier],
            "notes": list(self.notes),
        }


def samples_seen(step: int, n_train: int, batch_size: int) -> int:
    """Training samples taken after ``step`` optimizer steps (every epoch takes all ``n_train``)."""
    per_epoch = -(-n_train // batch_size)
    epochs, rest = divmod(step, per_epoch)
    return epochs * n_train + min(rest * batch_size, n_train)


def flops_per_sample(run: RunRecord) -> float:
    """FLOPs of one training sample's forward and backward pass in ``run``'s model.

    Raises:
        FintrainError: the run's configuration cannot be read back (e.g. an unknown tier).
    """
    # Here: counting builds the model (on the meta device), and fintrain.model loads torch.
    from fintrain.model import model_config_for, training_flops_per_sample

    cfg = validate_config(run.config, origin=f"{run.name}/config.json")
    return training_flops_per_sample(model_config_for(cfg, len(feature_names(cfg.features.tier))))


def run_points(run: RunRecord, per_sample: float) -> list[tuple[int, float, float]]:
    """(step, cumulative FLOPs, validation loss) after each of ``run``'s epochs."""
    summary = run.summary or {}
    batch = summary.get("batch_size") or (run.config.get("train") or {}).get("batch_size")
    n_train = (summary.get("windows") or {}).get("train")
    if not isinstance(batch, int) or batch < 1:
        return []
    points = []
    for record in run.records:
        if isinstance(record, EpochRecord) and (loss := finite_value(record.val.get("loss"))) is not None:
            seen = samples_seen(record.step, n_train, batch) if isinstance(n_train, int) and n_train > 0 else record.step * batch
            points.append((record.step, per_sample * seen, loss))
    return points


def compute_study(groups: Sequence[Group]) -> ComputeStudy:
    """The curves of the sizes in ``groups`` (one per size, its seeds averaged) and the frontier."""
    curves, notes = [], []
    shapes: dict[str, float] = {}
    for g in groups:
        by_step: dict[int, list[tuple[float, float]]] = {}
        per_sample = math.nan
        for run in g.runs:
            key = str(sorted((run.config.get("model") or {}).items())) + str(run.config.get("split")) + run.tier
            try:
                per_sample = shapes[key] if key in shapes else shapes.setdefault(key, flops_per_sample(run))
            except FintrainError as exc:
                notes.append(f"{run.name}: no FLOP count ({exc})")
                continue
            for step, flops, loss in run_points(run, per_sample):
                by_step.setdefault(step, []).append((flops, loss))
        points = tuple(sorted((sum(f for f, _ in v) / len(v), sum(l for _, l in v) / len(v)) for v in by_step.values()))
        if points:
            curves.append(ComputeCurve(g.label, int(g.x), per_sample, points, len(g.runs)))
        else:
            notes.append(f"{g.label}: no epoch with a validation loss in metrics.jsonl")
    return ComputeStudy(tuple(curves), frontier(curves), notes=tuple(notes))


def frontier(curves: Sequence[ComputeCurve]) -> tuple[tuple[float, float, str], ...]:
    """The points no other point beats with no more compute, by compute (ties: the lower loss first)."""
    best = math.inf
    front = []
    for flops, loss, label in sorted((f, v, c.label) for c in curves for f, v in c.points):
        if loss < best:
            best = loss
            front.append((flops, loss, label))
    return tuple(front)
