"""Sweeps: one configuration trained at several parameter budgets and seeds, one cell at a time.

Each cell is an ordinary run folder ``runs/<name>-<budget>-seed<k>``, so everything that reads
runs (``fintrain runs``, ``fintrain report``, TensorBoard) reads a sweep too. The sweep keeps no
state of its own: which cells are done is read from the folders, so running the same sweep
command again after a thermal stop, a Ctrl-C or a crash skips finished cells and resumes the
interrupted one from its ``last.pt``.

With ``--lrs`` each budget is tuned (the tuning rule): seed 0 trains at every rate given, in
folders ``<name>-<budget>-lr<rate>-seed0``; the rate whose cell has the best validation value
of the task's primary metric (``summary["best_val"]``, the epoch chosen on validation loss) is
chosen, and the other seeds train at that rate only. The test split never takes part: the
choice reads ``best_val`` and nothing else. A rerun reads the choice back from the finished
seed-0 cells, so tuning sweeps resume like any other.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from fintrain.config import RESUMABLE_FIELDS, RunConfig, check_run_name, validate_config
from fintrain.errors import ConfigError, TrainingStopped
from fintrain.evaluate.metrics import primary_metric
from fintrain.train.marker import RunBusyError, busy_message, live_marker
from fintrain.train.options import RunOptions
from fintrain.experiments.runs import CONFIG_FILE, HIGHER_IS_BETTER, LAST_CHECKPOINT, SUMMARY_FILE

log = logging.getLogger(__name__)


NEW, RESUME, EXTEND, SKIP = "new", "resume", "extend", "skip"


@dataclass(frozen=True)
class Cell:
    """One (budget, seed[, lr]) point of a sweep and the run folder it trains in."""

    budget: str
    seed: int
    name: str
    lr: float | None = None  # None: the base configuration's rate (no --lrs)


@dataclass
class CellResult:
    """What a cell did in this sweep command: trained anew, resumed, extended or skipped."""

    cell: Cell
    action: str
    run_dir: Path
    summary: dict[str, Any] | None
    seconds: float


@dataclass
class SweepProgress:
    """Where a sweep stands when a cell starts; what the overall progress display shows.

    Attributes:
        name: the sweep's name.
        index: the 0-based position of the cell about to run.
        total: cells in the sweep.
        cell: the cell about to run.
        action: new, resume, extend or skip.
        finished: cells finished before this one (skipped ones included).
        elapsed_s: seconds since this sweep command started.
        eta_s: seconds the remaining cells should take, from the cells of the same budget
            timed in this command; None until every remaining budget has been timed once.
    """

    name: str
    index: int
    total: int
    cell: Cell
    action: str
    finished: int
    elapsed_s: float
    eta_s: float | None


@dataclass
class SweepResult:
    """The cells of a finished sweep, in order."""

    name: str
    cells: list[CellResult] = field(default_factory=list)


def parse_budgets(text: str | Sequence[str]) -> list[str]:
    """``"2m,300K"`` as ``["2m", "300k"]``: each a preset or any size, by its canonical name, in
    the order given, no repeats (``2m`` and ``2000k`` are the same size)."""
    from fintrain.model import parse_budget  # here: fintrain.model loads torch

    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    names = [p for p in parts if p]
    if not names:
        raise ConfigError("--budgets is empty; give one or more sizes, such as 2m,20m or 50k,300k,1m")
    budgets = []
    for name in names:
        try:
            budgets.append(parse_budget(name).name)
        except ConfigError as exc:
            raise ConfigError(f"--budgets: {exc}") from None
    repeated = [b for b in dict.fromkeys(budgets) if budgets.count(b) > 1]
    if repeated:
        raise ConfigError(f"--budgets names {repeated[0]} twice")
    return budgets


def parse_lrs(text: str | Sequence[str | float]) -> list[float]:
    """``"3e-4,1e-3"`` as ``[0.0003, 0.001]``: positive rates up to 1, ascending, no repeats."""
    parts = [p.strip() if isinstance(p, str) else p for p in (text.split(",") if isinstance(text, str) else text)]
    parts = [p for p in parts if p != ""]
    if not parts:
        raise ConfigError("--lrs is empty; give one or more learning rates, such as 3e-4,1e-3,3e-3")
    rates = []
    for p in parts:
        try:
            rate = float(p)
        except ValueError:
            raise ConfigError(f"--lrs: {p!r} is not a number; give rates such as 3e-4,1e-3,3e-3") from None
        if not (math.isfinite(rate) and 0 < rate <= 1):
            raise ConfigError(f"--lrs: {p!r} is not a learning rate in (0, 1]")
        rates.append(rate)
    if len(set(rates)) < len(rates):
        raise ConfigError(f"--lrs names {next(r for r in rates if rates.count(r) > 1):g} twice")
    return sorted(rates)


def lr_text(lr: float) -> str:
    """A rate as cell names write it: decimal, no hyphen (3e-4 -> ``0.0003``)."""
    return f"{lr:.10f}".rstrip("0").rstrip(".")


def cell_name(name: str, budget: str, seed: int, lr: float | None = None) -> str:
    """``<name>-<budget>-seed<k>``, or ``<name>-<budget>-lr<rate>-seed<k>`` in a tuning sweep."""
    return f"{name}-{budget}" + (f"-lr{lr_text(lr)}" if lr is not None else "") + f"-seed{seed}"


def validation_value(summary: Mapping[str, Any], metric: str) -> float | None:
    """A finished cell's validation value of ``metric`` (its ``best_val``; never its test)."""
    value = (summary.get("best_val") or {}).get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def choose_lr(tried: Mapping[float, float | None], metric: str) -> float:
    """The rate with the best validation ``metric`` (ties: the smaller rate).

    Raises:
        ConfigError: no rate has a validation value (every seed-0 cell diverged).
    """
    scored = {lr: v for lr, v in tried.items() if v is not None}
    if not scored:
        raise ConfigError(f"no learning rate of {', '.join(map(lr_text, sorted(tried)))} gave a validation "
                          f"{metric}; try smaller rates in --lrs")
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0
    return max(sorted(scored), key=lambda lr: sign * scored[lr])


def at_grid_edge(chosen: float, tried: Sequence[float]) -> bool:
    """Whether the chosen rate is the smallest or largest of a grid of two or more."""
    return len(tried) > 1 and chosen in (min(tried), max(tried))


def sweep_cells(name: str, budgets: Sequence[str], seeds: int) -> list[Cell]:
    """The cells of a sweep, budget by budget in the order given, seeds 0..seeds-1 within each.

    Raises:
        ConfigError: a name that cannot be a folder name, or fewer than one seed.
    """
    # Cell names are parsed back as <name>-<budget>-seed<k>; budgets hold no hyphen, so a name
    # may (demo-v2), and it only has to be a safe folder name.
    check_run_name(name, "sweep name")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    return [Cell(b, k, f"{name}-{b}-seed{k}") for b in budgets for k in range(seeds)]


def cell_pattern(name: str) -> re.Pattern[str]:
    """The folder names of a sweep's cells: ``<name>-<budget>-seed<k>``."""
    return re.compile(rf"{re.escape(name)}-(?P<budget>[^-/]+)(?:-lr(?P<lr>\d+(?:\.\d+)?))?-seed(?P<seed>\d+)")


def find_cells(name: str, runs_dir: Path) -> list[Path]:
    """The run folders of a sweep under ``runs_dir`` (any budgets and seeds it has)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    pattern = cell_pattern(name)
    return sorted(p for p in runs_dir.iterdir() if pattern.fullmatch(p.name) and (p / CONFIG_FILE).is_file())


def cell_config(base: RunConfig, cell: Cell) -> RunConfig:
    """The base configuration with the cell's budget, seed and rate (validated again)."""
    data = base.model_dump(mode="json")
    data["model"] = {**data["model"], "budget": cell.budget}
    data["train"] = {**data["train"], "seed": cell.seed, **({"lr": cell.lr} if cell.lr is not None else {})}
    return validate_config(data, origin=f"configuration of sweep cell {cell.name}")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def config_differences(stored: dict[str, Any], wanted: RunConfig) -> list[str]:
    """Fields where a cell's stored config differs from what the sweep asks, in what it learns.

    Ignored: RESUMABLE_FIELDS, the thermal policy and batch probing (they decide when and where
    a cell trains, not what it learns), and how often it logs. A configured
    ``batch_size = "auto"`` matches whatever size the run resolved it to.
    """
    old = _flatten(stored)
    new = _flatten(wanted.model_dump(mode="json"))
    ignore = {*RESUMABLE_FIELDS, "train.log_every"}
    if new.get("train.batch_size") == "auto":
        ignore.add("train.batch_size")
    return [f"{k}={old.get(k)!r} in the cell, {new.get(k)!r} now"
            for k in sorted(set(old) | set(new))
            if k not in ignore and not k.startswith(("thermal.", "probe.")) and old.get(k) != new.get(k)]


def plan_action(run_dir: Path, cfg: RunConfig) -> str:
    """What a cell needs: ``new`` (no folder, or one without a checkpoint), ``resume`` (a
    ``last.pt`` and no summary), ``extend`` (finished, but asked for more epochs or steps) or
    ``skip`` (finished as asked).

    Raises:
        ConfigError: the folder holds a run of another configuration.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        return NEW
    stored = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    differences = config_differences(stored, cfg)
    if differences:
        raise ConfigError(
            f"{run_dir} holds a run of another configuration ({'; '.join(differences[:3])}"
            f"{'; ...' if len(differences) > 3 else ''}); give the sweep another --name, or the same options as before"
        )
    if (run_dir / SUMMARY_FILE).is_file():
        asked = (cfg.train.max_steps, cfg.train.epochs)
        had = (stored["train"].get("max_steps"), stored["train"].get("epochs"))
        return SKIP if asked == had else EXTEND
    if (run_dir / LAST_CHECKPOINT).is_file():
        return RESUME
    return NEW


def _eta(results: list[CellResult], remaining: Sequence[Cell]) -> float | None:
    """Seconds the remaining cells should take, from cells of the same budget trained anew."""
    timed: dict[str, list[float]] = {}
    for r in results:
        if r.action == NEW:
            timed.setdefault(r.cell.budget, []).append(r.seconds)
    if any(c.budget not in timed for c in remaining):
        return None
    return sum(sum(timed[c.budget]) / len(timed[c.budget]) for c in remaining)


def run_sweep(
    base: RunConfig,
    name: str,
    budgets: Sequence[str],
    seeds: int,
    data_dir: Path,
    runs_dir: Path,
    *,
    lrs: str | Sequence[str | float] | None = None,
    options: RunOptions = RunOptions(),
    on_cell: Callable[[SweepProgress], None] | None = None,
) -> SweepResult:
    """Train every cell of a sweep that is not finished yet, one after another.

    Every cell trains under ``base``'s thermal policy: a thermal critical or a Ctrl-C stops the
    sweep after the cell saved its checkpoint, and the same call later resumes there.

    Args:
        base: the configuration every cell shares; each cell sets ``model.budget`` and
            ``train.seed`` (and ``train.lr`` with ``lrs``) on it.
        name: the sweep's name; cells are ``runs_dir/<name>-<budget>-seed<k>``.
        budgets: budget names, in the order to train them (usually smallest first).
        seeds: how many seeds per budget (0 .. seeds-1).
        data_dir: the data folder (fetched and built once, by the first cell).
        runs_dir: where the cell folders go.
        lrs: learning rates to tune each budget over (the tuning rule in the module
            docstring); None: every cell at ``base.train.lr``.
        options: how each cell is shown and watched (live panel, console, messages, extra
            sinks, a thermal monitor); ``notify`` also hears of a cell folder restarted.
        on_cell: called before each cell with the overall progress.

    Returns:
        A SweepResult with one CellResult per cell.

    Raises:
        fintrain.errors.TrainingStopped: a cell stopped on heat (exit code 3) or Ctrl-C
            (130) after saving ``last.pt``; its ``run_dir`` names the cell.
        ConfigError: an unknown budget, a bad name or rate, or a cell folder of another
            configuration.
        RunBusyError: a cell folder that another live process is training into (checked for
            every cell before the first one trains; in a tuning sweep the seeds after 0 are
            checked once their rate is chosen).
    """
    # Imported here so that `fintrain report` and `runs` (which read sweeps) start without torch.
    from fintrain.train import run as run_lib

    budgets = parse_budgets(budgets)
    plain = sweep_cells(name, budgets, seeds)
    rates = parse_lrs(lrs) if lrs is not None else None
    first = plain if rates is None else [Cell(b, 0, cell_name(name, b, 0, lr), lr) for b in budgets for lr in rates]
    total = len(plain) if rates is None else len(budgets) * (len(rates) + seeds - 1)
    configs = {c.name: cell_config(base, c) for c in first}
    run_lib.check_names(configs[first[0].name])
    # Check every folder before training anything: a clash found after an hour is an hour lost.
    actions = {c.name: plan_action(Path(runs_dir) / c.name, configs[c.name]) for c in first}
    for cell in first:
        if actions[cell.name] != SKIP:
            _refuse_if_live(Path(runs_dir) / cell.name)
    result = SweepResult(name)
    started = time.monotonic()

    def train(cell: Cell, cfg: RunConfig, action: str) -> dict[str, Any] | None:
        run_dir = Path(runs_dir) / cell.name
        if on_cell is not None:
            finished = sum(1 for r in result.cells if r.summary is not None)
            remaining = [cell] if rates is not None else plain[len(result.cells):]
            on_cell(SweepProgress(name, len(result.cells), total, cell, action, finished,
                                  time.monotonic() - started, _eta(result.cells, remaining)))
        cell_started = time.monotonic()
        summary = _run_cell(run_lib, cell, cfg, action, run_dir, data_dir, runs_dir, options)
        result.cells.append(CellResult(cell, action, run_dir, summary, time.monotonic() - cell_started))
        return summary

    if rates is None:
        for cell in plain:
            train(cell, configs[cell.name], actions[cell.name])
        return result
    metric = primary_metric(base.target.task)
    for budget in budgets:
        tried = {}
        for cell in (c for c in first if c.budget == budget):
            summary = train(cell, configs[cell.name], actions[cell.name])
            tried[cell.lr] = validation_value(summary or {}, metric)
        chosen = choose_lr(tried, metric)
        log.info("sweep %s: %s trains at lr %s (validation %s: %s)", name, budget, lr_text(chosen), metric,
                 ", ".join(f"{lr_text(lr)} {v}" for lr, v in tried.items()))
        for seed in range(1, seeds):
            cell = Cell(budget, seed, cell_name(name, budget, seed, chosen), chosen)
            cfg = cell_config(base, cell)
            action = plan_action(Path(runs_dir) / cell.name, cfg)
            if action != SKIP:
                _refuse_if_live(Path(runs_dir) / cell.name)
            train(cell, cfg, action)
    return result


def _run_cell(run_lib: Any, cell: Cell, cfg: RunConfig, action: str, run_dir: Path, data_dir: Path,
              runs_dir: Path, options: RunOptions) -> dict[str, Any] | None:
    """Train, resume, extend or read back one cell; its summary."""
    overrides = {f: _get(cfg, f) for f in RESUMABLE_FIELDS}
    try:
        if action == SKIP:
            return json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
        if action == NEW:
            if run_dir.exists():
                _clear_dead_cell(run_dir, options.notify)
            return run_lib.start_run(cfg, data_dir, runs_dir, run_name=cell.name, options=options).summary
        return run_lib.resume_run(run_dir, data_dir, overrides, options=options).summary
    except TrainingStopped as stop:
        stop.run_dir = run_dir
        raise


def _refuse_if_live(run_dir: Path) -> None:
    """Refuse a cell folder that another live process is training into (its ``running.json``)."""
    held = live_marker(run_dir)
    if held is not None:
        raise RunBusyError(busy_message(run_dir, held))


def _clear_dead_cell(run_dir: Path, notify: Callable[[str], None]) -> None:
    """Remove a cell folder whose run died before its first checkpoint, so it can start over.

    Such a folder holds no training worth keeping, and start_run refuses existing folders.
    """
    _refuse_if_live(run_dir)
    notify(f"{run_dir} has no checkpoint to resume from; starting the cell again")
    shutil.rmtree(run_dir)


def _get(cfg: RunConfig, dotted: str) -> Any:
    section, key = dotted.split(".")
    return getattr(getattr(cfg, section), key)
