"""The scaling study along one swept axis: model size N, context length, or data fraction D.

For each value of the axis ``axis_study`` reports the test primary metric and the test loss as a
mean over seeds with an interval that combines the two sources of noise a scaling claim has to
beat: which seeds were trained, and which test dates happened to be drawn. Each of the
``resamples`` draws one moving-block resample of the test dates (``evaluate.bootstrap``, shared
by every run: they are tested on the same windows, so the draw is paired across values) and,
for every value, its seeds with replacement; the statistic is the mean over the drawn seeds of
each run's metric under the date weights. The interval is the percentile interval of those
draws. Per-window losses and scores come from each run's ``predictions.parquet`` (the loss is
the log loss of the predicted probability, or the squared error for ``return``: the mean of
``evaluate.metrics.window_losses``).

The same per-window losses feed the fit L(x) = E + A·x^-α (``scaling.scaling_fit``), whose
interval for α resamples seeds and test-date blocks in the same way. The learned baselines
(logistic or linear, and gbdt) become bands: each one's metric and loss with their interval, on
the runs at the axis's largest value (the baselines do not depend on the model's size; along the
data axis they are refitted on each fraction's training period, and the band is the full
period's). Each value is compared with each learned baseline by #10's paired test: the
difference model - baseline of the primary metric on the same resamples (and the same drawn
seeds), ``better``/``worse`` when its interval excludes zero, else ``indistinguishable``; on the
size axis the smallest size that is ``better`` is named, or none.

Runs without ``predictions.parquet`` (made before it existed) are still reported, with
Student-t intervals over seeds of their summaries' values and a fit that resamples seeds only;
the study's ``method`` says which applies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fintrain.evaluate.baselines import LEARNED
from fintrain.evaluate.bootstrap import block_counts, date_codes, percentile_interval
from fintrain.evaluate.metrics import loss_metric, primary_metric, task_metrics, window_losses
from fintrain.evaluate.verdict import MODEL, resampled_metrics, verdict
from fintrain.experiments.runs import RunRecord, finite_value
from fintrain.experiments.scaling import AXIS_WORDS, ScalingFit, scaling_fit
from fintrain.experiments.stats import mean_interval

# The run-config value each axis varies, and how the other axes are held.
AXIS_FIELDS = {"size": "budget", "context": "context_len", "fraction": "data_fraction"}


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its interval (None when there is none: one seed, no resampling)."""

    mean: float
    low: float | None
    high: float | None

    @property
    def has_interval(self) -> bool:
        """True when the interval is known."""
        return self.low is not None and self.high is not None

    def text(self, digits: int = 4) -> str:
        """``0.5400 (0.5152..0.5648)``, or the mean alone."""
        if not self.has_interval:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ({self.low:.{digits}f}..{self.high:.{digits}f})"

    def to_json(self) -> dict[str, float | None]:
        """``{"mean", "low", "high"}``."""
        return {"mean": self.mean, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Group:
    """The finished runs of one value of an axis (its seeds, at the chosen rate)."""

    label: str
    x: float
    runs: tuple[RunRecord, ...]


@dataclass(frozen=True)
class AxisRow:
    """One value of the axis: its test metric and test loss over seeds."""

    label: str
    x: float
    runs: tuple[str, ...]
    metric: Estimate
    loss: Estimate
    metric_per_seed: tuple[float, ...]
    loss_per_seed: tuple[float, ...]


@dataclass(frozen=True)
class BaselineCheck:
    """The paired test of one value against one learned baseline, on the primary metric."""

    label: str
    baseline: str
    diff: float
    ci: tuple[float, float] | None
    verdict: str

    def to_json(self) -> dict[str, Any]:
        """The check as plain JSON values."""
        return {"value": self.label, "baseline": self.baseline, "diff": self.diff,
                "ci": list(self.ci) if self.ci else None, "verdict": self.verdict}


@dataclass(frozen=True)
class AxisStudy:
    """What the report says about one axis.

    Attributes:
        axis: ``size``, ``context`` or ``fraction``.
        held: the other axes' values the study holds (the largest of each).
        metric, loss: the names of the primary metric and of the loss (log_loss or mse).
        method: how the intervals were made.
        rows: one per value, ascending.
        fit: the fit of the test loss against the axis.
        bands: each learned baseline's test ``metric`` and ``loss`` (Estimates).
        val_bands: each learned baseline's validation loss (for the loss-curve and compute plots).
        band_from: the value whose runs give the bands.
        checks: every value against every learned baseline.
        smallest_better: on the size axis, each learned baseline -> the smallest size that is
            ``better`` than it (None: none is); empty on the other axes.
    """

    axis: str
    held: dict[str, Any]
    metric: str
    loss: str
    method: str
    rows: tuple[AxisRow, ...]
    fit: ScalingFit
    bands: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    val_bands: dict[str, Estimate] = field(default_factory=dict)
    band_from: str = ""
    checks: tuple[BaselineCheck, ...] = ()
    smallest_better: dict[str, str | None] = field(default_factory=dict)

    @property
    def words(self) -> str:
        """The axis in words (``data fraction``)."""
        return AXIS_WORDS[self.axis]

    def smallest_sentences(self) -> list[str]:
        """``smallest size better than gbdt by the paired test: 300k`` (or ``none``) per baseline."""
        return [f"smallest size better than {b} by the paired test: {label or 'none'}"
                for b, label in self.smallest_better.items()]

    def to_json(self) -> dict[str, Any]:
        """The study as plain JSON values (``report --json`` under ``axes``)."""
        return {
            "axis": self.axis, "held": self.held, "metric": self.metric, "loss": self.loss, "method": self.method,
            "values": [{"value": r.label, "x": r.x, "runs": list(r.runs), f"test_{self.metric}": r.metric.to_json(),
                        "test_loss": r.loss.to_json(), f"{self.metric}_per_seed": list(r.metric_per_seed),
                        "loss_per_seed": list(r.loss_per_seed)} for r in self.rows],
            "fit": self.fit.to_json(),
            "baseline_bands": {b: {f"test_{self.metric}": v["metric"].to_json(), "test_loss": v["loss"].to_json(),
                                   **({"val_loss": self.val_bands[b].to_json()} if b in self.val_bands else {})}
                               for b, v in self.bands.items()},
            "bands_from": self.band_from,
            "vs_baselines": [c.to_json() for c in self.checks],
            **({"smallest_better": self.smallest_better} if self.axis == "size" else {}),
        }


def _estimate(resampled: Sequence[np.ndarray], points: Sequence[float], rng: np.random.Generator,
              ci: float) -> Estimate:
    """The mean of ``points`` with the percentile interval of ``seed_mix(resampled)``."""
    low, high = percentile_interval(seed_mix(resampled, rng), ci)
    return Estimate(float(np.mean(points)), low, high)


def seed_mix(per_run: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Each resample's mean over seeds drawn with replacement: ``per_run`` is each seed's (R,)
    values under the shared date resamples; returns (R,)."""
    stacked = np.stack([np.asarray(v, dtype=np.float64) for v in per_run], axis=1)  # (R, S)
    picks = rng.integers(0, stacked.shape[1], size=stacked.shape)  # (R, S)
    return np.take_along_axis(stacked, picks, axis=1).mean(axis=1)


def aligned_windows(frames: Sequence[pl.DataFrame], split: str) -> tuple[np.ndarray, list[pl.DataFrame]]:
    """The windows of ``split`` that every frame has (by date and ticker), sorted, and each frame
    cut to them in that order; the dates of those windows."""
    parts = [f.filter(pl.col("split") == split) for f in frames]
    keys = parts[0].select("date", "ticker").unique()
    for part in parts[1:]:
        keys = keys.join(part.select("date", "ticker").unique(), on=["date", "ticker"], how="inner")
    keys = keys.sort(["date", "ticker"])
    cut = [keys.join(part.unique(["date", "ticker"], keep="first"), on=["date", "ticker"], how="left")
           .sort(["date", "ticker"]) for part in parts]
    return keys["date"].to_numpy(), cut


def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy().astype(np.float64)


def axis_study(
    axis: str,
    groups: Sequence[Group],
    task: str,
    predictions: Mapping[str, pl.DataFrame | None],
    *,
    held: Mapping[str, Any] | None = None,
    block_days: int = 20,
    resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> AxisStudy:
    """The study of one axis over its values (see the module docstring).

    Args:
        axis: ``size``, ``context`` or ``fraction``.
        groups: one per value: its label, x (parameters, rows or share) and finished runs.
        task: the runs' task.
        predictions: run name -> its ``predictions.parquet`` (None when it has none).
        held: the other axes' values (reported as they are).
        block_days: dates per block of the test-date resampling.
        resamples: bootstrap resamples.
        ci: interval coverage.
        seed: seeds the resampling.
    """
    groups = sorted(groups, key=lambda g: g.x)
    runs = [r for g in groups for r in g.runs]
    frames = [predictions.get(r.name) for r in runs]
    usable = bool(runs) and all(f is not None and MODEL in f.columns and f.filter(pl.col("split") == "test").height
                                for f in frames)
    if usable:
        dates, _ = aligned_windows(frames, "test")
        usable = dates.size > 0
    study = _from_windows if usable else _from_summaries
    return study(axis, groups, task, predictions, dict(held or {}), block_days, resamples, ci, seed)


def _from_windows(axis: str, groups: Sequence[Group], task: str, predictions: Mapping[str, pl.DataFrame | None],
                  held: dict[str, Any], block_days: int, resamples: int, ci: float, seed: int) -> AxisStudy:
    """The study from per-window predictions: seeds and test-date blocks resampled together."""
    metric, loss = primary_metric(task), loss_metric(task)
    runs = [r for g in groups for r in g.runs]
    dates, test = aligned_windows([predictions[r.name] for r in runs], "test")
    frame = dict(zip((r.name for r in runs), test))
    learned = [b for b in LEARNED if all(b in f.columns for f in test)]
    rng = np.random.default_rng(seed)
    codes, n_dates = date_codes(dates)
    counts = block_counts(n_dates, block_days, resamples, rng)
    boot, point, losses = {}, {}, {}
    for r in runs:
        labels = _column(frame[r.name], "label")
        scores = {name: _column(frame[r.name], name) for name in (MODEL, *learned)}
        boot[r.name] = resampled_metrics(task, labels, scores, codes, counts)
        point[r.name] = {name: task_metrics(task, labels, s) for name, s in scores.items()}
        losses[r.name] = window_losses(task, labels, scores[MODEL])

    def estimate(members: Sequence[RunRecord], name: str, m: str) -> Estimate:
        return _estimate([boot[r.name][name][m] for r in members], [point[r.name][name][m] for r in members], rng, ci)

    rows = tuple(AxisRow(g.label, g.x, tuple(r.name for r in g.runs), estimate(g.runs, MODEL, metric),
                         estimate(g.runs, MODEL, loss), tuple(point[r.name][MODEL][metric] for r in g.runs),
                         tuple(point[r.name][MODEL][loss] for r in g.runs)) for g in groups)
    fit = scaling_fit(axis, [g.x for g in groups], [[point[r.name][MODEL][loss] for r in g.runs] for g in groups],
                      window_losses=[[losses[r.name] for r in g.runs] for g in groups], dates=dates,
                      block_days=block_days, resamples=resamples, ci=ci, seed=seed)
    top = groups[-1]
    bands = {b: {"metric": estimate(top.runs, b, metric), "loss": estimate(top.runs, b, loss)} for b in learned}
    checks = []
    for g in groups:
        for b in learned:
            diffs = [boot[r.name][MODEL][metric] - boot[r.name][b][metric] for r in g.runs]
            low, high = percentile_interval(seed_mix(diffs, rng), ci)
            diff = float(np.mean([point[r.name][MODEL][metric] - point[r.name][b][metric] for r in g.runs]))
            checks.append(BaselineCheck(g.label, b, diff, (low, high), verdict(metric, (low, high))))
    method = (f"{ci:.0%} percentile intervals from {resamples} resamples of the seeds and of {block_days}-day blocks "
              f"of the {n_dates} test dates every run shares (paired: the same dates for every value)")
    return AxisStudy(axis, held, metric, loss, method, rows, fit, bands,
                     _validation_bands(top.runs, learned, task, predictions, block_days, resamples, ci, rng),
                     top.label, tuple(checks), _smallest(axis, groups, learned, checks))


def _validation_bands(runs: Sequence[RunRecord], learned: Sequence[str], task: str,
                      predictions: Mapping[str, pl.DataFrame | None], block_days: int, resamples: int, ci: float,
                      rng: np.random.Generator) -> dict[str, Estimate]:
    """Each learned baseline's validation loss over ``runs``, seeds and validation-date blocks resampled."""
    dates, val = aligned_windows([predictions[r.name] for r in runs], "val")
    if dates.size == 0:
        return {}
    codes, n_dates = date_codes(dates)
    counts = block_counts(n_dates, block_days, resamples, rng)
    loss = loss_metric(task)
    out = {}
    for b in learned:
        per_run = [resampled_metrics(task, _column(f, "label"), {b: _column(f, b)}, codes, counts)[b][loss] for f in val]
        points = [task_metrics(task, _column(f, "label"), _column(f, b))[loss] for f in val]
        out[b] = _estimate(per_run, points, rng, ci)
    return out


def _smallest(axis: str, groups: Sequence[Group], learned: Sequence[str],
              checks: Sequence[BaselineCheck]) -> dict[str, str | None]:
    """On the size axis: each baseline -> the smallest size whose check is ``better``."""
    if axis != "size":
        return {}
    better = {(c.label, c.baseline) for c in checks if c.verdict == "better"}
    return {b: next((g.label for g in groups if (g.label, b) in better), None) for b in learned}


def summary_loss(run: RunRecord, task: str) -> float | None:
    """A run's test loss from its summary: the log loss (mse), else the training loss."""
    test = (run.summary or {}).get("test") or {}
    value = finite_value(test.get(loss_metric(task)))
    return value if value is not None else finite_value(test.get("loss"))


def _t_estimate(values: Sequence[float]) -> Estimate:
    i = mean_interval(values)
    return Estimate(i.estimate, i.low, i.high)


def _from_summaries(axis: str, groups: Sequence[Group], task: str, predictions: Mapping[str, pl.DataFrame | None],
                    held: dict[str, Any], block_days: int, resamples: int, ci: float, seed: int) -> AxisStudy:
    """The study from summaries only (runs without predictions.parquet): intervals over seeds."""
    metric, loss = primary_metric(task), loss_metric(task)
    missing = [r.name for g in groups for r in g.runs if predictions.get(r.name) is None]
    rows, fit_groups = [], []
    for g in groups:
        metrics = [v for r in g.runs if (v := finite_value(r.test)) is not None]
        losses = [v for r in g.runs if (v := summary_loss(r, task)) is not None]
        nan = Estimate(math.nan, None, None)
        rows.append(AxisRow(g.label, g.x, tuple(r.name for r in g.runs), _t_estimate(metrics) if metrics else nan,
                            _t_estimate(losses) if losses else nan, tuple(metrics), tuple(losses)))
        if losses and g.x > 0:
            fit_groups.append((g.x, losses))
    fit = scaling_fit(axis, [x for x, _ in fit_groups], [v for _, v in fit_groups], resamples=resamples, ci=ci, seed=seed)
    top = groups[-1] if groups else None
    bands, checks = {}, []
    learned = [b for b in LEARNED if top and all(b in ((r.summary or {}).get("baselines") or {}) for r in top.runs)]
    for b in learned:
        values = {m: [v for r in top.runs if (v := finite_value(r.summary["baselines"][b].get(m))) is not None]
                  for m in (metric, loss)}
        if values[metric] and values[loss]:
            bands[b] = {"metric": _t_estimate(values[metric]), "loss": _t_estimate(values[loss])}
    for g in groups:
        for b in learned:
            diffs = [r.test - v for r in g.runs
                     if r.test is not None and (v := finite_value(((r.summary or {}).get("baselines") or {}).get(b, {}).get(metric))) is not None]
            if diffs:
                i = mean_interval(diffs)
                bounds = (i.low, i.high) if i.has_interval else None
                checks.append(BaselineCheck(g.label, b, i.estimate, bounds, verdict(metric, bounds or (math.nan, math.nan))))
    shown = ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
    method = (f"{ci:.0%} Student-t intervals over seeds; test dates not resampled: predictions.parquet missing "
              f"for {shown}" if missing else f"{ci:.0%} Student-t intervals over seeds (the runs share no test windows)")
    return AxisStudy(axis, held, metric, loss, method, tuple(rows), fit, bands, {}, top.label if top else "",
                     tuple(checks), _smallest(axis, groups, learned, checks))
