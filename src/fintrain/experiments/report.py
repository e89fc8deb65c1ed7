"""Scaling reports: did a bigger budget help, beyond seed noise, and beyond a baseline?

``build_report`` groups finished runs by budget and compares, on each run's test metric (the
task's primary metric: AUC, or MSE for returns):

- each budget with the strongest baseline: per run, the model's value minus that baseline's on
  the same test windows, then a t-interval over the runs (seeds);
- each budget with the next smaller one: Welch's t-interval for the difference of the means.

An interval that excludes zero in the better direction is called "beyond seed noise". This is
a t-interval over seeds, not a bootstrap over test windows: it measures how much the result
moves when only the seed changes, which is the noise a scaling claim has to beat.

Runs are grouped by point: (budget, context length, data fraction). Each swept axis (size N
always; context length and data fraction when the runs hold more than one value) gets a study
(``fintrain.experiments.axes``): the test metric and test loss per value with intervals over
seeds and test-date blocks, the fit L(x) = E + A·x^-α with a bootstrap interval for α and a
verdict (``fintrain.experiments.scaling``; with fewer than 4 values the report says why there is
none), the learned baselines as bands, and on the size axis the smallest size ``better`` than
each learned baseline by the paired test. The other axes are held at their largest value. The
size axis also gets validation loss against training FLOPs (``fintrain.experiments.compute``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fintrain.errors import ReportError
from fintrain.experiments.axes import AXIS_FIELDS, AxisStudy, Group, axis_study
from fintrain.experiments.compute import ComputeStudy, compute_study
from fintrain.experiments.runs import FINISHED, HIGHER_IS_BETTER, RunRecord, read_predictions
from fintrain.experiments.scaling import ScalingFit
from fintrain.experiments.sweep import at_grid_edge, choose_lr, nominal_size, number_text, validation_value
from fintrain.experiments.stats import (
    CONFIDENCE,
    Interval,
    mean_interval,
    welch_interval,
)
from fintrain.storage import atomic_write_json, atomic_write_text

METHOD = (
    "95% Student-t intervals over seeds: one-sample for each budget's mean and for its paired "
    "difference from the baseline (same test windows), Welch's for the difference between budgets"
)


@dataclass(frozen=True)
class BudgetStats:
    """The finished runs of one point (budget, context length, data fraction) and their test metric.

    ``label`` is the budget, followed by ``ctx<rows>`` and ``frac<share>`` when the runs
    reported on vary those.
    """

    budget: str
    params: int
    runs: tuple[RunRecord, ...]
    values: tuple[float, ...]
    interval: Interval
    context_len: int = 60
    data_fraction: float = 1.0
    label: str = ""

    @property
    def point(self) -> tuple[str, int, float]:
        """(budget, context length, data fraction)."""
        return (self.budget, self.context_len, self.data_fraction)


@dataclass(frozen=True)
class Comparison:
    """One question the report answers, with its number and its answer in words.

    Attributes:
        subject: the budget asked about.
        against: a baseline name or a smaller budget.
        kind: ``baseline`` or ``budget``.
        difference: subject minus against, in the metric's own direction, with its interval.
        verdict: ``better``, ``worse``, ``no difference`` (the interval holds zero) or
            ``unknown`` (too few seeds for an interval).
        sentence: the answer in words.
    """

    subject: str
    against: str
    kind: str
    difference: Interval
    verdict: str
    sentence: str


@dataclass(frozen=True)
class LrTuning:
    """How a budget's learning rate was chosen in a tuning sweep (``--lrs``).

    Attributes:
        budget: the budget.
        tried: each rate of seed 0 with its validation value of the primary metric.
        chosen: the rate with the best validation value; the budget's statistics use its runs.
        at_edge: the chosen rate is the smallest or largest tried.
    """

    budget: str
    tried: tuple[tuple[float, float | None], ...]
    chosen: float
    at_edge: bool

    @property
    def sentence(self) -> str:
        """The choice in words."""
        rates = ", ".join(f"{lr:g} {'-' if v is None else f'{v:.4f}'}" for lr, v in self.tried)
        edge = "; best lr at grid edge: widen --lrs" if self.at_edge else ""
        return f"{self.budget} trains at lr {self.chosen:g} (validation, seed 0: {rates}){edge}"


@dataclass
class Report:
    """Everything ``fintrain report`` prints, writes and plots."""

    metric: str
    higher_is_better: bool
    task: str
    budgets: list[BudgetStats]
    baselines: dict[str, float]
    best_baseline: str | None
    comparisons: list[Comparison]
    runs: list[RunRecord]
    left_out: list[RunRecord]
    notes: list[str] = field(default_factory=list)
    method: str = METHOD
    scaling: list[ScalingFit] = field(default_factory=list)
    lr_tuning: list[LrTuning] = field(default_factory=list)
    axes: list[AxisStudy] = field(default_factory=list)
    compute: ComputeStudy | None = None
    # Row label -> measure -> (mean, std, runs) over seeds: each budget's long/flat strategy, the
    # learned baselines' and buy-and-hold (from each run's summary "trading").
    trading: dict[str, dict[str, tuple[float, float, int]]] = field(default_factory=dict)
    # The same for IC, ICIR, Rank IC and Rank ICIR, for runs on a universe (summary "ic").
    ic: dict[str, dict[str, tuple[float, float, int]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON document (``report.json``, ``fintrain report --json``)."""

        def interval(i: Interval) -> dict[str, Any]:
            return {"estimate": i.estimate, "low": i.low, "high": i.high, "n": i.n, "df": i.df}

        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "task": self.task,
            "method": self.method,
            "confidence": CONFIDENCE,
            "budgets": [
                {"budget": b.budget, "label": b.label, "context_len": b.context_len, "data_fraction": b.data_fraction,
                 "params": b.params, "seeds": [r.seed for r in b.runs],
                 "runs": [r.name for r in b.runs], "values": list(b.values), "mean": interval(b.interval)}
                for b in self.budgets
            ],
            "baselines": self.baselines,
            "best_baseline": self.best_baseline,
            "comparisons": [
                {"subject": c.subject, "against": c.against, "kind": c.kind,
                 "difference": interval(c.difference), "verdict": c.verdict, "sentence": c.sentence}
                for c in self.comparisons
            ],
            "left_out": [{"name": r.name, "status": r.status} for r in self.left_out],
            "notes": self.notes,
            "scaling": [f.to_json() for f in self.scaling],
            "axes": [a.to_json() for a in self.axes],
            "smallest_better": next((a.smallest_better for a in self.axes if a.axis == "size"), {}),
            "compute": self.compute.to_json() if self.compute else None,
            "lr_tuning": [
                {"budget": t.budget, "chosen_lr": t.chosen, "at_grid_edge": t.at_edge, "sentence": t.sentence,
                 "tried": [{"lr": lr, f"val_{self.metric}": v} for lr, v in t.tried]}
                for t in self.lr_tuning
            ],
            "trading": {row: {m: {"mean": v[0], "std": v[1], "n": v[2]} for m, v in measures.items()}
                        for row, measures in self.trading.items()},
            "ic": {row: {m: {"mean": v[0], "std": v[1], "n": v[2]} for m, v in measures.items()}
                   for row, measures in self.ic.items()},
        }


def fmt_params(params: int) -> str:
    """``18,912,769`` as ``18.9M``."""
    if params >= 1_000_000:
        return f"{params / 1e6:.1f}M"
    if params >= 1_000:
        return f"{params / 1e3:.1f}k"
    return str(params)


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def _interval_text(i: Interval) -> str:
    return f"[{_signed(i.low)}, {_signed(i.high)}]" if i.has_interval else "(no interval)"


def _verdict(improvement: Interval) -> str:
    """better / worse / no difference / unknown, from an interval oriented so that up is better."""
    if not improvement.has_interval:
        return "unknown"
    if improvement.low > 0:
        return "better"
    if improvement.high < 0:
        return "worse"
    return "no difference"


def _oriented(diff: Interval, higher_is_better: bool) -> Interval:
    if higher_is_better:
        return diff
    flip = (lambda v: None if v is None else -v)
    return Interval(-diff.estimate, flip(diff.high), flip(diff.low), diff.n, diff.df)


def _sentence(subject: str, against: str, kind: str, metric: str, diff: Interval, verdict: str) -> str:
    change = f"{metric} {_signed(diff.estimate)} {_interval_text(diff)}"
    if kind == "baseline":
        words = {
            "better": f"beats the {against} baseline beyond seed noise",
            "worse": f"is worse than the {against} baseline beyond seed noise",
            "no difference": f"is not distinguishable from the {against} baseline: the interval holds zero",
            "unknown": f"cannot be told apart from the {against} baseline: one seed gives no measure of seed noise (use --seeds 3 or more)",
        }
    else:
        words = {
            "better": f"improves on {against} beyond seed noise",
            "worse": f"is worse than {against} beyond seed noise",
            "no difference": f"does not improve on {against} beyond seed noise: the interval holds zero",
            "unknown": f"cannot be told apart from {against}: one seed gives no measure of seed noise (use --seeds 3 or more)",
        }
    return f"{subject} {words[verdict]} ({change})."


def build_report(runs: Sequence[RunRecord], *, resamples: int = 1000) -> Report:
    """Group finished runs by point and compare them with the baselines and with each other;
    study each swept axis (see the module docstring).

    Args:
        runs: run records (``fintrain.experiments.runs.read_run``); unfinished ones are listed
            as left out.
        resamples: bootstrap resamples of the axis studies.

    Raises:
        ReportError: no finished run, or finished runs of different tasks.
    """
    finished = [r for r in runs if r.status == FINISHED and r.test is not None]
    left_out = [r for r in runs if r not in finished]
    if not finished:
        states = ", ".join(f"{r.name} ({r.status_label})" for r in runs) or "none given"
        raise ReportError(f"no finished run to report on; runs: {states}")
    tasks = sorted({r.task for r in finished})
    if len(tasks) > 1:
        raise ReportError(f"the runs mix tasks ({', '.join(tasks)}), whose metrics cannot be compared; report one task at a time")
    metric = finished[0].primary_metric
    higher = metric in HIGHER_IS_BETTER
    notes = []
    datasets = sorted({(r.ticker, r.tier, json.dumps(r.config.get("target", {}), sort_keys=True)) for r in finished})
    if len(datasets) > 1:
        notes.append("the runs differ in ticker, tier or target, so their test windows differ; "
                     "budget differences mix in data differences")

    groups: dict[tuple[str, int, float], list[RunRecord]] = {}
    for r in finished:
        groups.setdefault(_point(r), []).append(r)
    label = _labeller(groups)
    tuning = []
    for point, members in groups.items():
        rates = sorted({_lr(r) for r in members})
        if len(rates) > 1:
            tried = {lr: next((validation_value(r.summary or {}, metric) for r in members
                               if _lr(r) == lr and r.seed == 0), None) for lr in rates}
            chosen = choose_lr(tried, metric)
            tuning.append(LrTuning(label(point), tuple(tried.items()), chosen, at_grid_edge(chosen, rates)))
            groups[point] = [r for r in members if _lr(r) == chosen]
    budgets = []
    for point, members in groups.items():
        members.sort(key=lambda r: (r.seed, r.name))
        params = sorted({r.params for r in members if r.params is not None})
        if len(params) > 1:
            notes.append(f"budget {label(point)} runs have different parameter counts ({', '.join(map(str, params))}); "
                         "their architectures differ")
        values = tuple(r.test for r in members)
        budgets.append(BudgetStats(point[0], params[0] if params else 0, tuple(members), values, mean_interval(values),
                                   point[1], point[2], label(point)))
    budgets.sort(key=lambda b: (b.context_len, b.data_fraction, b.params, nominal_size(b.budget), b.budget))
    for b in budgets:
        seeds = [r.seed for r in b.runs]
        if len(set(seeds)) < len(seeds):
            notes.append(f"budget {b.label} has runs with the same seed ({', '.join(r.name for r in b.runs)})")

    baseline_values: dict[str, list[float]] = {}
    for r in finished:
        for name, metrics in (r.summary or {}).get("baselines", {}).items():
            value = metrics.get(metric)
            if isinstance(value, int | float) and math.isfinite(value):
                baseline_values.setdefault(name, []).append(float(value))
    baselines = {name: sum(v) / len(v) for name, v in baseline_values.items()}
    best_baseline = None
    if baselines:
        best_baseline = (max if higher else min)(baselines, key=lambda n: baselines[n])

    comparisons = []
    for i, b in enumerate(budgets):
        if best_baseline is not None:
            diffs = [r.test - r.summary["baselines"][best_baseline][metric] for r in b.runs
                     if isinstance(r.summary["baselines"].get(best_baseline, {}).get(metric), int | float)]
            if diffs:
                diff = mean_interval(diffs)
                verdict = _verdict(_oriented(diff, higher))
                comparisons.append(Comparison(b.label, best_baseline, "baseline", diff, verdict,
                                              _sentence(b.label, best_baseline, "baseline", metric, diff, verdict)))
        smaller = budgets[i - 1] if i > 0 else None
        if smaller is not None and smaller.point[1:] == b.point[1:]:  # the next smaller size, same context and data
            diff = welch_interval(b.values, smaller.values)
            verdict = _verdict(_oriented(diff, higher))
            comparisons.append(Comparison(b.label, smaller.label, "budget", diff, verdict,
                                          _sentence(b.label, smaller.label, "budget", metric, diff, verdict)))
    order = [b.label for b in budgets]
    tuning.sort(key=lambda t: order.index(t.budget))
    notes += [f"budget {t.budget}: best lr at grid edge: widen --lrs" for t in tuning if t.at_edge]
    axes = axis_studies(budgets, tasks[0], resamples=resamples)
    size = next(a for a in axes if a.axis == "size")
    compute = compute_study(_axis_groups("size", [b for b in budgets if _held_on(b, size.held)]))
    notes += list(compute.notes)
    return Report(metric, higher, tasks[0], budgets, baselines, best_baseline, comparisons, list(finished), left_out, notes, scaling=[a.fit for a in axes],
                  lr_tuning=tuning, axes=axes, compute=compute,
                  trading=_over_seeds(budgets, "trading", TRADING_MEASURES), ic=_over_seeds(budgets, "ic", IC_MEASURES))


def _point(run: RunRecord) -> tuple[str, int, float]:
    return (run.budget, run.context_len, run.data_fraction)


def _labeller(groups: dict[tuple[str, int, float], list[RunRecord]]) -> Any:
    """A point's label: its budget, with ctx<L> and frac<f> only for the axes the runs vary."""
    contexts = len({p[1] for p in groups}) > 1
    fractions = len({p[2] for p in groups}) > 1

    def label(point: tuple[str, int, float]) -> str:
        return (point[0] + (f" ctx{point[1]}" if contexts else "")
                + (f" frac{number_text(point[2])}" if fractions else ""))

    return label


def _lr(run: RunRecord) -> float:
    return float(run.config.get("train", {}).get("lr", math.nan))


def _size(b: BudgetStats) -> float:
    return float(b.params) if b.params > 0 else nominal_size(b.budget)


def _held_on(b: BudgetStats, held: dict[str, Any]) -> bool:
    return all(getattr(b, name) == value for name, value in held.items())


def _axis_groups(axis: str, points: Sequence[BudgetStats]) -> list[Group]:
    """Each point of a slice as a value of ``axis``: its label and x (parameters, rows or share)."""
    if axis == "size":
        return [Group(b.budget, _size(b), b.runs) for b in points]
    if axis == "context":
        return [Group(str(b.context_len), float(b.context_len), b.runs) for b in points]
    return [Group(number_text(b.data_fraction), b.data_fraction, b.runs) for b in points]


def axis_studies(points: Sequence[BudgetStats], task: str, resamples: int = 1000) -> list[AxisStudy]:
    """The study of the size axis, and of the context and data axes when the points vary them.

    Each axis is studied on the points that hold the other two axes at their largest value
    (the largest size, the longest context, the most data).
    """
    largest = {"budget": max(points, key=lambda b: (_size(b), b.budget)).budget,
               "context_len": max(b.context_len for b in points),
               "data_fraction": max(b.data_fraction for b in points)}
    runs = [r for b in points for r in b.runs]
    first = runs[0]
    block_days = ((first.summary or {}).get("eval") or {}).get("block_days")
    if not isinstance(block_days, int):
        block_days = max(int((first.config.get("target") or {}).get("horizon", 1)), 20)
    predictions = {r.name: read_predictions(r.path) for r in runs}
    studies = []
    for axis, name in AXIS_FIELDS.items():
        if axis != "size" and len({getattr(b, name) for b in points}) < 2:
            continue
        held = {k: v for k, v in largest.items() if k != name}
        chosen = [b for b in points if _held_on(b, held)]
        studies.append(axis_study(axis, _axis_groups(axis, chosen), task, predictions, held=held,
                                  block_days=block_days, resamples=resamples))
    return studies


TRADING_MEASURES = ("ann_return", "ann_vol", "sharpe", "max_drawdown", "turnover", "exposure")
IC_MEASURES = ("ic", "icir", "rank_ic", "rank_icir")


def _mean_std(values: list[float]) -> tuple[float, float, int]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else math.nan
    return mean, std, len(values)


def _over_seeds(budgets: Sequence[BudgetStats], key: str, measures: Sequence[str]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Mean and std over runs of a summary section (``trading`` or ``ic``), one row per budget's
    model and one per other predictor (pooled over every run that has it)."""
    rows: dict[str, dict[str, list[float]]] = {}
    for b in budgets:
        for r in b.runs:
            for predictor, values in ((r.summary or {}).get(key) or {}).items():
                row = f"PatchTST {b.label}" if predictor == "PatchTST" else predictor
                for m in measures:
                    value = values.get(m)
                    if isinstance(value, int | float) and math.isfinite(value):
                        rows.setdefault(row, {}).setdefault(m, []).append(float(value))
    models = [row for row in rows if row.startswith("PatchTST ")]
    order = models + sorted(row for row in rows if row not in models)
    return {row: {m: _mean_std(v) for m, v in rows[row].items()} for row in order}


def fmt_mean_std(value: tuple[float, float, int] | None, fmt: str = "{:.4f}") -> str:
    """``0.1234 ± 0.0100`` (no ± for a single run); ``-`` when there is no value."""
    if value is None:
        return "-"
    mean, std, n = value
    return fmt.format(mean) + (f" ± {fmt.format(std).lstrip('+')}" if n > 1 and math.isfinite(std) else "")


def markdown(report: Report, images: Sequence[str] = ()) -> str:
    """The report as Markdown: the comparison table, the answers in words, the plots."""
    m = report.metric
    lines = [f"# Scaling report ({report.task} task, test {m})", ""]
    lines += [f"| budget | params | seeds | test {m} (mean) | 95% interval | per seed |",
              "| --- | ---: | ---: | ---: | --- | --- |"]
    for b in report.budgets:
        i = b.interval
        ci = f"{i.low:.4f} .. {i.high:.4f}" if i.has_interval else "-"
        lines.append(f"| {b.budget} | {fmt_params(b.params)} | {len(b.runs)} | {i.estimate:.4f} | {ci} | "
                     + ", ".join(f"{v:.4f}" for v in b.values) + " |")
    for name, value in sorted(report.baselines.items()):
        best = " (strongest)" if name == report.best_baseline else ""
        lines.append(f"| baseline {name}{best} | - | - | {value:.4f} | - | - |")
    lines += ["", f"{'Higher' if report.higher_is_better else 'Lower'} {m} is better. Method: {report.method}.", ""]
    lines += [f"- {c.sentence}" for c in report.comparisons]
    if report.lr_tuning:
        lines += ["", "Learning rates (tuned on validation; test not used):", *[f"- {t.sentence}." for t in report.lr_tuning]]
    for study in report.axes:
        lines += ["", *axis_markdown(study)]
    for fit in report.scaling:
        lines += ["", f"Scaling fit of the test loss ({fit.axis}): {fit.verdict}."]
        if fit.fitted:
            lines.append(f"L(x) = {fit.e:.4f} + {fit.a:.4f}·(x / {fit.values[0]:,.6g})^-{fit.alpha:.3f}; "
                         f"interval from {fit.resamples} bootstrap resamples of {fit.method or 'nothing'}.")
    if report.compute and report.compute.frontier:
        lines += ["", "Compute-efficient frontier (validation loss against training FLOPs): "
                  + ", ".join(f"{label} at {flops:.3g} FLOPs: {loss:.4f}" for flops, loss, label in report.compute.frontier)
                  + f". {report.compute.method}."]
    if report.trading:
        lines += ["", "Trading view on the test dates (long/flat at the validation cut; mean ± std over runs):", "",
                  "| strategy | runs | " + " | ".join(TRADING_MEASURES) + " |", "| --- | ---: |" + " ---: |" * len(TRADING_MEASURES)]
        for row, values in report.trading.items():
            n = max(v[2] for v in values.values())
            lines.append(f"| {row} | {n} | " + " | ".join(fmt_mean_std(values.get(m)) for m in TRADING_MEASURES) + " |")
    if report.ic:
        lines += ["", "Cross-sectional IC against the next day's return (test; mean ± std over runs):", "",
                  "| predictor | " + " | ".join(IC_MEASURES) + " |", "| --- |" + " ---: |" * len(IC_MEASURES)]
        for row, values in report.ic.items():
            lines.append(f"| {row} | " + " | ".join(fmt_mean_std(values.get(m)) for m in IC_MEASURES) + " |")
    if report.left_out:
        lines += ["", "Not included (not finished): " + ", ".join(f"{r.name} ({r.status_label})" for r in report.left_out) + "."]
    if report.notes:
        lines += ["", *[f"Note: {n}." for n in report.notes]]
    if images:
        lines += ["", *[f"![{Path(p).stem}]({Path(p).name})" for p in images]]
    return "\n".join(lines) + "\n"


def held_text(held: dict[str, Any]) -> str:
    """The values an axis study holds, in words (``context 60 rows, data fraction 1``)."""
    words = {"budget": "size {}", "context_len": "context {} rows", "data_fraction": "data fraction {}"}
    return ", ".join(words[k].format(number_text(v) if isinstance(v, float) else v) for k, v in held.items())


def axis_markdown(study: AxisStudy) -> list[str]:
    """One axis study as Markdown: the table per value, the verdicts and the bands."""
    m, baselines = study.metric, list(study.bands)
    checks = {(c.label, c.baseline): c for c in study.checks}
    lines = [f"### {study.words.capitalize()} axis ({held_text(study.held)})", "",
             f"| {study.words} | seeds | test {m} (95% interval) | test {study.loss} (95% interval) | "
             + "".join(f"vs {b} | " for b in baselines), "| --- | ---: | --- | --- |" + " --- |" * len(baselines)]
    for row in study.rows:
        cells = [f"{checks[(row.label, b)].diff:+.4f} {checks[(row.label, b)].verdict}" if (row.label, b) in checks
                 else "-" for b in baselines]
        lines.append(f"| {row.label} | {len(row.runs)} | {row.metric.text()} | {row.loss.text()} | "
                     + "".join(f"{c} | " for c in cells))
    for b, band in study.bands.items():
        lines.append(f"| baseline {b} (runs at {study.band_from}) | - | {band['metric'].text()} | {band['loss'].text()} | "
                     + "- | " * len(baselines))
    lines += ["", f"- Fit of the test loss: {study.fit.verdict}."]
    lines += [f"- {s.capitalize()}." for s in study.smallest_sentences()]
    lines += [f"- Method: {study.method}."]
    return lines


def write_report(report: Report, out_dir: Path, images: Sequence[Path] = ()) -> list[Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``, naming the plots drawn there.

    Args:
        report: what ``build_report`` returned.
        out_dir: the folder to write into (created).
        images: the PNGs already drawn into ``out_dir`` (``fintrain.experiments.plots.draw_all``),
            linked from ``report.md`` and listed in ``report.json``.

    Returns:
        The files of the report, the images first.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {**report.to_json(), "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "images": [Path(p).name for p in images]}
    atomic_write_json(out_dir / "report.json", document)
    atomic_write_text(out_dir / "report.md", markdown(report, [Path(p).name for p in images]))
    return [*map(Path, images), out_dir / "report.json", out_dir / "report.md"]
