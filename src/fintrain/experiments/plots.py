"""The report's PNG plots: scaling, loss curves, temperature. Drawn with matplotlib, a core dependency.

Every plot is readable printed in grey: series differ by line style and marker, not by colour
alone, and baselines and thermal bands are labelled on the plot. Figures are built on
``matplotlib.figure.Figure`` directly (no pyplot), so drawing changes no global backend state
and works without a display. Sizes are fixed in pixels: 1200 wide; the height grows with the
number of panels (a row of up to three panels per budget or run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fintrain.experiments.axes import AxisStudy
from fintrain.experiments.report import Report, ReportError, fmt_params, held_text
from fintrain.experiments.runs import RunRecord
from fintrain.records import Event
from fintrain.storage import atomic_path

DPI = 100
WIDTH_IN = 12.0
SCALING_HEIGHT_IN = 7.0
LOSS_ROW_IN = 4.5
TEMPERATURE_ROW_IN = 3.5
PANELS_PER_ROW = 3

LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
GREYS = ("black", "0.35", "0.55", "0.7")
HATCHES = ("//", "\\\\", "..", "xx")
AXIS_LABELS = {"size": "parameters", "context": "context length (rows)", "fraction": "share of the training period"}


def _figure(height_in: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ReportError("plots need matplotlib, a dependency of fintrain that is missing: reinstall fintrain "
                          "(`pipx reinstall fintrain`, or `pip install matplotlib` in its environment), "
                          "or pass --no-plots") from exc
    # Fixed margins rather than layout="constrained", which doubles the drawing time; the
    # margins are in inches so they hold for every height.
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    fig.subplots_adjust(left=0.8 / WIDTH_IN, right=1 - 0.25 / WIDTH_IN, bottom=0.9 / height_in,
                        top=1 - 0.6 / height_in, wspace=0.22, hspace=0.45)
    return fig


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _grid(fig: Any, n: int) -> list[Any]:
    cols = min(n, PANELS_PER_ROW)
    rows = math.ceil(n / cols)
    axes = fig.subplots(rows, cols, squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return flat[:n]


def _rows(n: int) -> int:
    return math.ceil(max(n, 1) / PANELS_PER_ROW)


def _describe(report: Report) -> str:
    runs = report.runs
    tickers = ", ".join(sorted({r.ticker for r in runs}))
    tiers = ", ".join(sorted({r.tier for r in runs}))
    return f"{tickers} · tier {tiers} · task {report.task}"


def _band(ax: Any, name: str, estimate: Any, k: int) -> None:
    """A learned baseline as a horizontal band: its interval shaded and hatched, its mean a line."""
    style = LINESTYLES[1:][k % (len(LINESTYLES) - 1)]
    if estimate.has_interval:
        ax.axhspan(estimate.low, estimate.high, facecolor="0.5", alpha=0.12, hatch=HATCHES[k % len(HATCHES)],
                   edgecolor="0.55", linewidth=0.0, zorder=0)
    ax.axhline(estimate.mean, linestyle=style, color="0.35", linewidth=1.4, zorder=1,
               label=f"baseline {name} (band: 95% interval)")
    ax.annotate(f"{name} {estimate.mean:.3f}", xy=(1.0, estimate.mean), xycoords=("axes fraction", "data"),
                xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom", fontsize=9, color="0.2")


def _values_panel(ax: Any, study: AxisStudy, which: str) -> None:
    """One measure (``metric`` or ``loss``) per value: a hollow marker per seed, the mean with its interval."""
    for i, row in enumerate(study.rows):
        per_seed = row.metric_per_seed if which == "metric" else row.loss_per_seed
        estimate = row.metric if which == "metric" else row.loss
        n = len(per_seed)
        # Spread the seeds a little sideways (multiplicatively: the axis is logarithmic).
        xs = [row.x * 1.04 ** (k - (n - 1) / 2) for k in range(n)]
        ax.scatter(xs, per_seed, marker="o", facecolors="none", edgecolors="0.3", s=45, zorder=3,
                   label="one seed" if i == 0 else None)
        yerr = [[estimate.mean - estimate.low], [estimate.high - estimate.mean]] if estimate.has_interval else None
        ax.errorbar([row.x], [estimate.mean], yerr=yerr, fmt="D", color="black", markersize=7, capsize=7,
                    elinewidth=1.8, zorder=4, label="mean, 95% interval (seeds and test dates)" if i == 0 else None)


def axis_plot(report: Report, study: AxisStudy, path: Path) -> Path:
    """One axis: the test metric (left) and the test loss with its fitted E + A·x^-α (right) per
    value, each learned baseline a horizontal band; the metric panel also has the other baselines
    as labelled lines."""
    fig = _figure(SCALING_HEIGHT_IN)
    metric_ax, loss_ax = fig.subplots(1, 2)
    _values_panel(metric_ax, study, "metric")
    _values_panel(loss_ax, study, "loss")
    for k, (name, band) in enumerate(study.bands.items()):
        _band(metric_ax, name, band["metric"], k)
        _band(loss_ax, name, band["loss"], k)
    # Baselines that learn nothing (base rate, always up) are lines; equal values share one line.
    lines: dict[float, list[str]] = {}
    for name, value in sorted(report.baselines.items()):
        if name not in study.bands:
            lines.setdefault(round(value, 9), []).append(name)
    for k, (value, names) in enumerate(sorted(lines.items())):
        label = " = ".join(names)
        metric_ax.axhline(value, linestyle=LINESTYLES[(k + len(study.bands) + 1) % len(LINESTYLES)], color="0.6",
                          linewidth=1.1, zorder=1, label=f"baseline {label}")
    fit = study.fit
    xs = [row.x for row in study.rows]
    if fit.fitted and xs:
        grid = np.geomspace(min(xs), max(xs), 200)
        ci = f" (95% CI {fit.alpha_ci[0]:.2f}..{fit.alpha_ci[1]:.2f})" if fit.alpha_ci else ""
        loss_ax.plot(grid, fit.predict(grid), color="black", linewidth=1.6, linestyle="-", zorder=2,
                     label=f"fit E + A·x^-α: α = {fit.alpha:.3f}{ci}")
    for ax, what in ((metric_ax, f"test {study.metric} ({'higher' if report.higher_is_better else 'lower'} is better)"),
                     (loss_ax, f"test loss ({study.loss}, lower is better)")):
        ax.set_xscale("log")
        if xs:
            ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
            ax.set_xticks(xs, [_tick(study, row) for row in study.rows])
        ax.minorticks_off()
        ax.set_xlabel(f"{AXIS_LABELS[study.axis]} (log scale)")
        ax.set_ylabel(what)
        ax.grid(True, axis="y", color="0.85", linewidth=0.8)
        ax.legend(loc="best", fontsize=8, frameon=True)
    verdict = fit.verdict if len(fit.verdict) < 110 else fit.verdict[:107] + "..."
    metric_ax.set_title(f"test {study.metric} by {study.words} ({held_text(study.held)})", fontsize=10)
    loss_ax.set_title(verdict, fontsize=9)
    fig.suptitle(f"{study.words} axis — {_describe(report)}")
    return _save(fig, path)


def _tick(study: AxisStudy, row: Any) -> str:
    return f"{row.label}\n{fmt_params(int(row.x))}" if study.axis == "size" else row.label


def scaling_plot(report: Report, path: Path) -> Path:
    """The size axis's plot (``axis_plot``)."""
    return axis_plot(report, next(a for a in report.axes if a.axis == "size"), path)


def compute_plot(report: Report, path: Path) -> Path:
    """Validation loss against cumulative training FLOPs (log scale), one curve per size, the
    compute-efficient frontier, and the learned baselines' validation loss as bands."""
    fig = _figure(SCALING_HEIGHT_IN)
    fig.subplots_adjust(left=1.1 / WIDTH_IN)  # room for losses written to five decimals
    ax = fig.subplots()
    study = report.compute
    curves = study.curves if study else ()
    for k, curve in enumerate(curves):
        flops, loss = zip(*curve.points)
        ax.plot(flops, loss, linestyle=LINESTYLES[k % len(LINESTYLES)], marker=MARKERS[k % len(MARKERS)],
                color=GREYS[k % len(GREYS)], linewidth=1.4, markersize=5,
                label=f"{curve.label} ({fmt_params(curve.params)}, {curve.seeds} seed(s))")
    if study and study.frontier:
        flops, loss, _ = zip(*study.frontier)
        ax.plot(flops, loss, color="black", linewidth=3.0, alpha=0.45, drawstyle="steps-post", zorder=1,
                label="compute-efficient frontier")
    size = next((a for a in report.axes if a.axis == "size"), None)
    for k, (name, band) in enumerate((size.val_bands if size else {}).items()):
        _band(ax, name, band, k)
    if curves:
        ax.set_xscale("log")
        ax.legend(loc="best", fontsize=8, frameon=True)
    else:
        ax.text(0.5, 0.5, "no epoch with a validation loss: nothing to plot", transform=ax.transAxes,
                ha="center", va="center", fontsize=10)
    ax.set_xlabel("training compute (FLOPs, log scale)")
    ax.set_ylabel("validation loss (lower is better)")
    ax.grid(True, color="0.88", linewidth=0.8)
    ax.set_title(f"validation loss against training compute — {_describe(report)}")
    return _save(fig, path)


def _series(run: RunRecord, kind: str, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r.to_json() for r in run.records if r.kind == kind]  # the keys metrics.jsonl names
    pts = [(r[x], r[y]) for r in rows if isinstance(r.get(x), int | float) and isinstance(r.get(y), int | float)]
    if not pts:
        return np.array([]), np.array([])
    arr = np.array(pts, dtype=float)
    return arr[:, 0], arr[:, 1]


def loss_plot(report: Report, path: Path) -> Path:
    """Training loss (lines) and validation loss (markers) against step, one panel per budget,
    one line style per seed; the learned baselines' validation loss as bands."""
    groups = [(b.label, b.runs) for b in report.budgets]
    size = next((a for a in report.axes if a.axis == "size"), None)
    bands = size.val_bands if size else {}
    fig = _figure(LOSS_ROW_IN * _rows(len(groups)))
    for ax, (budget, runs) in zip(_grid(fig, len(groups)), groups):
        for k, run in enumerate(runs):
            style, marker, grey = LINESTYLES[k % len(LINESTYLES)], MARKERS[k % len(MARKERS)], GREYS[k % len(GREYS)]
            steps, loss = _series(run, "train", "step", "train/loss")
            few = len(steps) < 15  # a short run's few points would vanish as a bare line
            ax.plot(steps, loss, linestyle=style, color=grey, linewidth=1.5, marker=marker if few else None,
                    markersize=4, label=f"seed {run.seed} train")
            vsteps, vloss = _series(run, "epoch", "step", "val/loss")
            ax.plot(vsteps, vloss, linestyle="none", marker=marker, markersize=7, markerfacecolor="white",
                    markeredgecolor=grey, markeredgewidth=1.5, label=f"seed {run.seed} validation")
        for k, (name, band) in enumerate(bands.items()):
            _band(ax, f"{name} (validation)", band, k)
        ax.set_title(f"{budget} ({fmt_params(runs[0].params or 0)} parameters)")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.grid(True, color="0.88", linewidth=0.8)
        ax.legend(fontsize=8)
    fig.suptitle(f"loss curves — {_describe(report)}")
    return _save(fig, path)


def temperature_plot(report: Report, path: Path) -> Path:
    """Temperature over training time for each run, with the warning and critical levels and
    the thermal pauses marked."""
    runs = [r for b in report.budgets for r in b.runs]
    fig = _figure(TEMPERATURE_ROW_IN * _rows(len(runs)))
    for ax, run in zip(_grid(fig, len(runs)), runs):
        t, temp = _series(run, "train", "time_s", "thermal/temp_c")
        ax.set_title(run.name, fontsize=10)
        ax.set_xlabel("training time (min)")
        ax.set_ylabel("temperature (°C)")
        thermal = run.config.get("thermal", {})
        if len(t) == 0:
            source = thermal.get("source", "?")
            why = "monitoring was off" if source == "none" else "no sensor answered"
            ax.text(0.5, 0.5, f"no temperature readings\nthermal source: {source}\n({why})",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9)
            ax.set_yticks([])
            continue
        ax.plot(t / 60.0, temp, color="black", linewidth=1.4, marker="." if len(t) < 40 else None)
        for level, style in (("warning_c", "--"), ("critical_c", ":")):
            if isinstance(thermal.get(level), int | float):
                ax.axhline(thermal[level], linestyle=style, color="0.4", linewidth=1.2)
                ax.annotate(f"{level.removesuffix('_c')} {thermal[level]:.0f} °C", xy=(0.0, thermal[level]),
                            xycoords=("axes fraction", "data"), xytext=(3, 2), textcoords="offset points",
                            fontsize=8, color="0.25")
        steps, times = _series(run, "train", "step", "time_s")
        pauses = [e.step for e in run.events if e.event is Event.THERMAL_PAUSE and isinstance(e.step, int)]
        for k, step in enumerate(pauses):
            when = float(np.interp(step, steps, times)) / 60.0 if len(steps) else 0.0
            ax.axvline(when, color="0.2", linestyle="-.", linewidth=1.0, label="thermal pause" if k == 0 else None)
        if pauses:
            ax.legend(fontsize=8)
        ax.grid(True, color="0.88", linewidth=0.8)
    fig.suptitle("temperature during training (pauses excluded from the time axis)")
    return _save(fig, path)


def draw_all(report: Report, out_dir: Path) -> list[Path]:
    """``scaling.png`` (the size axis), ``scaling_context.png`` and ``scaling_fraction.png`` (when
    those axes are studied), ``loss_curves.png``, ``compute.png`` and ``temperature.png`` in
    ``out_dir`` (created).

    Raises:
        ReportError: matplotlib is not installed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    axes = [axis_plot(report, study, out_dir / ("scaling.png" if study.axis == "size" else f"scaling_{study.axis}.png"))
            for study in report.axes]
    return [
        *axes,
        loss_plot(report, out_dir / "loss_curves.png"),
        compute_plot(report, out_dir / "compute.png"),
        temperature_plot(report, out_dir / "temperature.png"),
    ]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, read from a PNG's header."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


__all__: Sequence[str] = ("axis_plot", "compute_plot", "draw_all", "loss_plot", "png_size", "scaling_plot",
                          "temperature_plot")
