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

from fintrain.experiments.report import Report, ReportError, fmt_params
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


def _figure(height_in: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ReportError("plots need matplotlib, a dependency of fintrain: reinstall fintrain (or pass --no-plots)") from exc
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


def scaling_plot(report: Report, path: Path) -> Path:
    """Test metric against parameter count: one hollow marker per seed, the mean with its 95%
    interval, and each baseline as a labelled horizontal line."""
    fig = _figure(SCALING_HEIGHT_IN)
    ax = fig.subplots()
    m = report.metric
    n_budgets = len(report.budgets)
    for b in report.budgets:
        x = max(b.params, 1)
        n = len(b.values)
        # Spread the seeds a little sideways (multiplicatively: the axis is logarithmic).
        xs = [x * 1.06 ** (k - (n - 1) / 2) for k in range(n)]
        ax.scatter(xs, b.values, marker="o", facecolors="none", edgecolors="0.3", s=50, zorder=3,
                   label="one seed" if b is report.budgets[0] else None)
        i = b.interval
        yerr = None
        if i.has_interval:
            yerr = [[i.estimate - i.low], [i.high - i.estimate]]
        ax.errorbar([x], [i.estimate], yerr=yerr, fmt="D", color="black", markersize=8, capsize=8,
                    elinewidth=1.8, zorder=4, label="mean, 95% interval over seeds" if b is report.budgets[0] else None)
    # Baselines with the same value (always-up and base rate both have AUC 0.5) share one line.
    lines: dict[float, list[str]] = {}
    for name, value in sorted(report.baselines.items()):
        lines.setdefault(round(value, 9), []).append(name)
    for k, (value, names) in enumerate(sorted(lines.items())):
        style = LINESTYLES[1:][k % (len(LINESTYLES) - 1)]
        label = " = ".join(names)
        ax.axhline(value, linestyle=style, color="0.4", linewidth=1.4, zorder=1, label=f"baseline {label}")
        ax.annotate(f"{label} {value:.3f}", xy=(1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom", fontsize=9, color="0.2")
    params = [max(b.params, 1) for b in report.budgets]
    ax.set_xscale("log")
    ax.set_xlim(min(params) / 3, max(params) * 3)
    ax.set_xticks(params, [f"{b.budget}\n{fmt_params(b.params)}" for b in report.budgets])
    ax.minorticks_off()
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel(f"test {m} ({'higher' if report.higher_is_better else 'lower'} is better)")
    seeds = sorted({len(b.values) for b in report.budgets})
    ax.set_title(f"test {m} against model size — {_describe(report)} — {n_budgets} budget(s), "
                 f"{'/'.join(map(str, seeds))} seed(s) each")
    ax.grid(True, axis="y", color="0.85", linewidth=0.8)
    ax.legend(loc="best", fontsize=9, frameon=True)
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
    one line style per seed."""
    groups = [(b.budget, b.runs) for b in report.budgets]
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
    """``scaling.png``, ``loss_curves.png`` and ``temperature.png`` in ``out_dir`` (created).

    Raises:
        ReportError: matplotlib is not installed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        scaling_plot(report, out_dir / "scaling.png"),
        loss_plot(report, out_dir / "loss_curves.png"),
        temperature_plot(report, out_dir / "temperature.png"),
    ]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, read from a PNG's header."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


__all__: Sequence[str] = ("draw_all", "loss_plot", "png_size", "scaling_plot", "temperature_plot")
