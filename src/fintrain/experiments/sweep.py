"""Sweeps: one configuration trained over a grid of budgets, context lengths, data fractions,
learning rates and seeds, one cell at a time.

Each cell is an ordinary run folder ``runs/<name>-<budget>-seed<k>``, so everything that reads
runs (``fintrain runs``, ``fintrain report``, TensorBoard) reads a sweep too. The sweep keeps no
state of its own: which cells are done is read from the folders, so running the same sweep
command again after a thermal stop, a Ctrl-C or a crash skips finished cells and resumes the
interrupted one from its ``last.pt``.

The cells are the product budgets x context lengths x data fractions x (rates) x seeds, listed in
training order by ``sweep_cells``. A cell's name gains ``-ctx<rows>`` (``--context-lens``) and
``-frac<share>`` (``--data-fractions``, ``split.data_fraction``) only when that axis is given,
so sweeps without them keep their names: ``<name>-<budget>[-ctx<L>][-frac<f>][-lr<rate>]-seed<k>``.

With ``--lrs`` each point (budget, context, fraction) is tuned (the tuning rule): seed 0 trains
at every rate given, in folders ``...-lr<rate>-seed0``; the rate whose cell has the best
validation value of the task's primary metric (``summary["best_val"]``, the epoch chosen on
validation loss) is chosen, and the other seeds train at that rate only. The test split never
takes part: the choice reads ``best_val`` and nothing else. A rerun reads the choice back from
the finished seed-0 cells, so tuning sweeps resume like any other.

All cells share one batch size. ``--batch-size auto`` is resolved once, before the first cell,
for the largest cell (budget, then context, then fraction) on the sweep's data; the cells'
``config.json`` record it, and a rerun takes it from the cells already there.
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
from fintrain.records import upgrade_summary
from fintrain.train.marker import RunBusyError, busy_message, live_marker
from fintrain.train.options import RunOptions
from fintrain.experiments.runs import CONFIG_FILE, HIGHER_IS_BETTER, LAST_CHECKPOINT, SUMMARY_FILE

log = logging.getLogger(__name__)


NEW, RESUME, EXTEND, SKIP = "new", "resume", "extend", "skip"


# The name of a cell whose rate the tuning rule has not chosen yet (never a folder name).
CHOSEN_LR = "<chosen>"


@dataclass(frozen=True)
class Cell:
    """One (budget[, context][, fraction], seed[, lr]) point of a sweep and the run folder it trains in.

    ``context_len`` and ``data_fraction`` are None when the sweep does not vary them (the base
    configuration's apply). A ``pending`` cell (seeds after 0 in a tuning sweep) trains at the
    rate chosen for its point: its ``lr`` is None and its name holds ``<chosen>`` until
    ``at_rate`` gives it the rate.
    """

    budget: str
    seed: int
    name: str
    lr: float | None = None  # None: the base configuration's rate (no --lrs)
    context_len: int | None = None
    data_fraction: float | None = None
    pending: bool = False

    @property
    def point(self) -> tuple[str, int | None, float | None]:
        """(budget, context, fraction): what the learning rate is tuned for and what times a cell."""
        return (self.budget, self.context_len, self.data_fraction)

    def at_rate(self, sweep: str, lr: float) -> Cell:
        """This pending cell at its chosen rate, with its folder name."""
        return Cell(self.budget, self.seed, cell_name(sweep, self.budget, self.seed, lr, self.context_len,
                                                      self.data_fraction), lr, self.context_len, self.data_fraction)


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
    return _shares(text, "--lrs", "learning rates, such as 3e-4,1e-3,3e-3", "a learning rate")


def parse_context_lens(text: str | Sequence[str | int]) -> list[int]:
    """``"120,30,60"`` as ``[30, 60, 120]``: look-back rows from 2 to 4096, ascending, no repeats."""
    parts = _parts(text, "--context-lens", "look-back lengths in rows, such as 30,60,120")
    lens = []
    for p in parts:
        try:
            rows = int(p)
        except ValueError:
            raise ConfigError(f"--context-lens: {p!r} is not a whole number of rows; give lengths such as 30,60,120") from None
        if not 2 <= rows <= 4096:
            raise ConfigError(f"--context-lens: {rows} is not a context length from 2 to 4096 rows")
        lens.append(rows)
    return _ascending_once(lens, "--context-lens", str)


def parse_fractions(text: str | Sequence[str | float]) -> list[float]:
    """``"1,0.25,0.5"`` as ``[0.25, 0.5, 1.0]``: shares of the training period in (0, 1], ascending."""
    return _shares(text, "--data-fractions", "shares of the training period, such as 0.25,0.5,1",
                   "a share of the training period")


def _shares(text: str | Sequence[str | float], option: str, example: str, what: str) -> list[float]:
    """Numbers in (0, 1] from a comma-separated option, ascending, no repeats."""
    values = []
    for p in _parts(text, option, example):
        try:
            value = float(p)
        except ValueError:
            raise ConfigError(f"{option}: {p!r} is not a number; give {example}") from None
        if not (math.isfinite(value) and 0 < value <= 1):
            raise ConfigError(f"{option}: {p!r} is not {what} in (0, 1]")
        values.append(value)
    return _ascending_once(values, option, number_text)


def _parts(text: str | Sequence[Any], option: str, example: str) -> list[Any]:
    parts = [p.strip() if isinstance(p, str) else p for p in (text.split(",") if isinstance(text, str) else text)]
    parts = [p for p in parts if p != ""]
    if not parts:
        raise ConfigError(f"{option} is empty; give one or more {example}")
    return parts


def _ascending_once(values: list[Any], option: str, show: Callable[[Any], str]) -> list[Any]:
    if len(set(values)) < len(values):
        raise ConfigError(f"{option} names {show(next(v for v in values if values.count(v) > 1))} twice")
    return sorted(values)


def number_text(value: float) -> str:
    """A rate or share as cell names write it: decimal, no hyphen (3e-4 -> ``0.0003``, 1.0 -> ``1``)."""
    return f"{value:.10f}".rstrip("0").rstrip(".")


lr_text = number_text


def cell_name(name: str, budget: str, seed: int, lr: float | None = None, context_len: int | None = None,
              data_fraction: float | None = None) -> str:
    """``<name>-<budget>-seed<k>``; ``-ctx<L>``, ``-frac<f>`` and ``-lr<rate>`` (in that order,
    before the seed) only for the axes the sweep varies."""
    return (f"{name}-{budget}" + (f"-ctx{context_len}" if context_len is not None else "")
            + (f"-frac{number_text(data_fraction)}" if data_fraction is not None else "")
            + (f"-lr{lr_text(lr)}" if lr is not None else "") + f"-seed{seed}")


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


def sweep_cells(
    name: str,
    budgets: Sequence[str],
    seeds: int,
    *,
    context_lens: Sequence[int] | None = None,
    data_fractions: Sequence[float] | None = None,
    lrs: Sequence[float] | None = None,
) -> list[Cell]:
    """Every cell of a sweep, in training order: budget by budget (in the order given), then each
    context length, then each data fraction; within a point seeds 0..seeds-1, or in a tuning
    sweep (``lrs``) seed 0 at every rate followed by the pending cells of seeds 1.. (see Cell).

    Raises:
        ConfigError: a name that cannot be a folder name, or fewer than one seed.
    """
    # Cell names are parsed back (cell_pattern); budgets hold no hyphen, so a name may (demo-v2),
    # and it only has to be a safe folder name.
    check_run_name(name, "sweep name")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    cells = []
    for budget in budgets:
        for context in context_lens or [None]:
            for fraction in data_fractions or [None]:
                if lrs is None:
                    cells += [Cell(budget, k, cell_name(name, budget, k, None, context, fraction), None, context,
                                   fraction) for k in range(seeds)]
                    continue
                cells += [Cell(budget, 0, cell_name(name, budget, 0, lr, context, fraction), lr, context, fraction)
                          for lr in lrs]
                pending = cell_name(name, budget, 0, None, context, fraction).removesuffix("-seed0")
                cells += [Cell(budget, k, f"{pending}-lr{CHOSEN_LR}-seed{k}", None, context, fraction, pending=True)
                          for k in range(1, seeds)]
    return cells


@dataclass(frozen=True)
class CellPlan:
    """One cell of a sweep's dry run: what it would do, its size and how long it should take."""

    cell: Cell
    action: str
    params: int
    batch_size: int
    total_steps: int
    step_s: float
    estimated_s: float  # 0 for a cell that is skipped

    def to_json(self) -> dict[str, Any]:
        """The ``sweep --dry-run --json`` object of the cell."""
        return {"name": self.cell.name, "budget": self.cell.budget, "seed": self.cell.seed, "lr": self.cell.lr,
                "action": self.action, "params": self.params, "batch_size": self.batch_size,
                "total_steps": self.total_steps, "step_s": self.step_s, "estimated_s": self.estimated_s}


def plan_sweep(base: RunConfig, name: str, budgets: Sequence[str], seeds: int, data_dir: Path, runs_dir: Path, *,
               lrs: str | Sequence[str | float] | None = None, context_lens: str | Sequence[int] | None = None,
               data_fractions: str | Sequence[float] | None = None,
               notify: Callable[[str], None] = log.info) -> list[CellPlan]:
    """Each cell of :func:`sweep_cells` with an estimated time, training nothing.

    The data is prepared as ``train --dry-run`` prepares it; each distinct model shape and batch
    size is timed once (``fintrain.train.estimate.time_steps``: a warm-up and three steps). A
    finished cell (``skip``) counts 0 s; a cell to resume or extend counts its whole length.
    Nothing is written to ``runs_dir``.
    """
    from fintrain.train import run as run_lib  # here: it loads torch

    cells = sweep_cells(
        name, parse_budgets(budgets), seeds, lrs=parse_lrs(lrs) if lrs is not None else None,
        context_lens=parse_context_lens(context_lens) if context_lens is not None else None,
        data_fractions=parse_fractions(data_fractions) if data_fractions is not None else None,
    )
    # The batch size the sweep would share (an `auto` one resolved as run_sweep resolves it).
    base = _shared_batch_size(run_lib, base, name, [c for c in cells if not c.pending], data_dir, runs_dir, notify)
    data_plans: dict[tuple[int, float], Any] = {}  # one data preparation per look-back and data fraction
    timings: dict[str, Any] = {}
    plans = []
    for cell in cells:
        cfg = cell_config(base, cell)
        point = (cfg.split.context_len, cfg.split.data_fraction)
        if point not in data_plans:
            data_plans[point] = run_lib.plan_run(cfg, data_dir, notify)
        plan = data_plans[point].variant(cfg)
        timed = len(timings)
        estimate = plan.estimate(Path(runs_dir) / cell.name, timings)
        if len(timings) > timed:
            notify(f"timed {cell.budget} ({plan.params:,} parameters) at batch {plan.batch_size}: "
                   f"{estimate['step_s']:.3g} s per step")
        action = NEW if cell.pending else plan_action(Path(runs_dir) / cell.name, cfg)
        seconds = 0.0 if action == SKIP else estimate["estimated_s"]
        plans.append(CellPlan(cell, action, plan.params, plan.batch_size, estimate["total_steps"], estimate["step_s"],
                              seconds))
    return plans


def cell_pattern(name: str) -> re.Pattern[str]:
    """The folder names of a sweep's cells: ``<name>-<budget>[-ctx<L>][-frac<f>][-lr<rate>]-seed<k>``."""
    number = r"\d+(?:\.\d+)?"
    return re.compile(rf"{re.escape(name)}-(?P<budget>[^-/]+)(?:-ctx(?P<ctx>\d+))?(?:-frac(?P<frac>{number}))?"
                      rf"(?:-lr(?P<lr>{number}))?-seed(?P<seed>\d+)")


def find_cells(name: str, runs_dir: Path) -> list[Path]:
    """The run folders of a sweep under ``runs_dir`` (any budgets and seeds it has)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    pattern = cell_pattern(name)
    return sorted(p for p in runs_dir.iterdir() if pattern.fullmatch(p.name) and (p / CONFIG_FILE).is_file())


def cell_config(base: RunConfig, cell: Cell) -> RunConfig:
    """The base configuration with the cell's budget, seed, rate, context and data fraction
    (validated again)."""
    data = base.model_dump(mode="json")
    data["model"] = {**data["model"], "budget": cell.budget}
    data["train"] = {**data["train"], "seed": cell.seed, **({"lr": cell.lr} if cell.lr is not None else {})}
    data["split"] = {**data["split"], **({"context_len": cell.context_len} if cell.context_len is not None else {}),
                     **({"data_fraction": cell.data_fraction} if cell.data_fraction is not None else {})}
    return validate_config(data, origin=f"configuration of sweep cell {cell.name}")


def nominal_size(budget: str) -> float:
    """A budget name's nominal size (``2m`` -> 2e6, ``1500k`` -> 1.5e6); inf when it is no size."""
    scale = {"k": 1e3, "m": 1e6, "b": 1e9}
    try:
        return float(budget[:-1]) * scale[budget[-1].lower()]
    except (KeyError, ValueError, IndexError):
        return math.inf


def largest_cell(cells: Sequence[Cell]) -> Cell:
    """The cell with the largest budget (nominal size), then the longest context, then the most data."""
    return max(cells, key=lambda c: (nominal_size(c.budget), c.context_len or 0, c.data_fraction or 1.0))


def recorded_batch_size(name: str, runs_dir: Path) -> tuple[int, str] | None:
    """The batch size the existing cells of a sweep trained at, and the cell it was read from
    (the largest budget's, should they differ); None without cells."""
    recorded = []
    for folder in find_cells(name, runs_dir):
        try:
            size = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))["train"]["batch_size"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            recorded.append((size, folder.name))
    if not recorded:
        return None
    pattern = cell_pattern(name)
    return max(recorded, key=lambda r: (nominal_size(pattern.fullmatch(r[1])["budget"]), r[1]))


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
    ``batch_size = "auto"`` matches whatever size the run resolved it to. A field the cell's
    config does not have (written before the field existed) counts as its default.
    """
    defaults = _flatten(RunConfig().model_dump(mode="json"))
    old = {**defaults, **_flatten(stored)}
    new = _flatten(wanted.model_dump(mode="json"))
    ignore = {*RESUMABLE_FIELDS, "train.log_every", "train.log_every_s"}
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
    """Seconds the remaining cells should take, from cells of the same point trained anew."""
    timed: dict[tuple[str, int | None, float | None], list[float]] = {}
    for r in results:
        if r.action == NEW:
            timed.setdefault(r.cell.point, []).append(r.seconds)
    if any(c.point not in timed for c in remaining):
        return None
    return sum(sum(timed[c.point]) / len(timed[c.point]) for c in remaining)


def run_sweep(
    base: RunConfig,
    name: str,
    budgets: Sequence[str],
    seeds: int,
    data_dir: Path,
    runs_dir: Path,
    *,
    lrs: str | Sequence[str | float] | None = None,
    context_lens: str | Sequence[str | int] | None = None,
    data_fractions: str | Sequence[str | float] | None = None,
    options: RunOptions = RunOptions(),
    on_cell: Callable[[SweepProgress], None] | None = None,
) -> SweepResult:
    """Train every cell of a sweep that is not finished yet, one after another.

    Every cell trains under ``base``'s thermal policy: a thermal critical or a Ctrl-C stops the
    sweep after the cell saved its checkpoint, and the same call later resumes there.

    Args:
        base: the configuration every cell shares; each cell sets ``model.budget`` and
            ``train.seed`` (and ``train.lr``, ``split.context_len``, ``split.data_fraction``
            for the axes given) on it.
        name: the sweep's name; cells are ``runs_dir/<name>-<budget>-seed<k>``.
        budgets: budget names, in the order to train them (usually smallest first).
        seeds: how many seeds per point (0 .. seeds-1).
        data_dir: the data folder (fetched and built once, before the first cell).
        runs_dir: where the cell folders go.
        lrs: learning rates to tune each point over (the tuning rule in the module
            docstring); None: every cell at ``base.train.lr``.
        context_lens: look-back lengths (rows) to sweep; None: ``base.split.context_len``.
        data_fractions: shares of the training period to sweep (``split.data_fraction``);
            None: ``base.split.data_fraction``.
        options: how each cell is shown and watched (live panel, console, messages, extra
            sinks, a thermal monitor); ``notify`` also hears of a cell folder restarted and
            of the sweep's batch size.
        on_cell: called before each cell with the overall progress.

    Returns:
        A SweepResult with one CellResult per cell.

    Raises:
        fintrain.errors.TrainingStopped: a cell stopped on heat (exit code 3) or Ctrl-C
            (130) after saving ``last.pt``; its ``run_dir`` names the cell.
        ConfigError: an unknown budget, a bad name, rate, context or fraction, or a cell
            folder of another configuration.
        RunBusyError: a cell folder that another live process is training into (checked for
            every cell before the first one trains; in a tuning sweep the seeds after 0 are
            checked once their rate is chosen).
    """
    # Imported here so that `fintrain report` and `runs` (which read sweeps) start without torch.
    from fintrain.train import run as run_lib

    rates = parse_lrs(lrs) if lrs is not None else None
    cells = sweep_cells(
        name, parse_budgets(budgets), seeds, lrs=rates,
        context_lens=parse_context_lens(context_lens) if context_lens is not None else None,
        data_fractions=parse_fractions(data_fractions) if data_fractions is not None else None,
    )
    ready = [c for c in cells if not c.pending]
    # What each cell asks for, as the user gave it (an `auto` batch size matches any cell's).
    wanted = {c.name: cell_config(base, c) for c in ready}
    run_lib.check_names(wanted[ready[0].name])
    # Check every folder before training anything: a clash found after an hour is an hour lost.
    actions = {c.name: plan_action(Path(runs_dir) / c.name, wanted[c.name]) for c in ready}
    for cell in ready:
        if actions[cell.name] != SKIP:
            _refuse_if_live(Path(runs_dir) / cell.name)
    shared = _shared_batch_size(run_lib, base, name, ready, data_dir, runs_dir, options.notify)
    result = SweepResult(name)
    started = time.monotonic()
    metric = primary_metric(base.target.task)
    tried: dict[tuple[str, int | None, float | None], dict[float, float | None]] = {}
    chosen: dict[tuple[str, int | None, float | None], float] = {}
    for index, cell in enumerate(cells):
        if cell.pending:
            cell = cell.at_rate(name, chosen[cell.point])
            action = plan_action(Path(runs_dir) / cell.name, cell_config(base, cell))
            if action != SKIP:
                _refuse_if_live(Path(runs_dir) / cell.name)
        else:
            action = actions[cell.name]
        run_dir = Path(runs_dir) / cell.name
        if on_cell is not None:
            finished = sum(1 for r in result.cells if r.summary is not None)
            on_cell(SweepProgress(name, index, len(cells), cell, action, finished,
                                  time.monotonic() - started, _eta(result.cells, cells[index:])))
        cell_started = time.monotonic()
        summary = _run_cell(run_lib, cell, cell_config(shared, cell), action, run_dir, data_dir, runs_dir, options)
        result.cells.append(CellResult(cell, action, run_dir, summary, time.monotonic() - cell_started))
        if rates is not None and cell.seed == 0:
            tried.setdefault(cell.point, {})[cell.lr] = validation_value(summary or {}, metric)
            if len(tried[cell.point]) == len(rates):
                chosen[cell.point] = choose_lr(tried[cell.point], metric)
                log.info("sweep %s: %s trains at lr %s (validation %s: %s)", name,
                         " ".join(str(part) for part in cell.point if part is not None), lr_text(chosen[cell.point]),
                         metric, ", ".join(f"{lr_text(lr)} {v}" for lr, v in tried[cell.point].items()))
    return result


def _shared_batch_size(run_lib: Any, base: RunConfig, name: str, cells: Sequence[Cell], data_dir: Path,
                       runs_dir: Path, notify: Callable[[str], None]) -> RunConfig:
    """``base`` with the one batch size every cell trains at (see the module docstring)."""
    if base.train.batch_size != "auto":
        return base
    recorded = recorded_batch_size(name, runs_dir)
    if recorded is not None:
        size, origin = recorded[0], f"as recorded by cell {recorded[1]}"
    else:
        largest = largest_cell(cells)
        size, how = run_lib.plan_batch_size(cell_config(base, largest), data_dir, notify)
        origin = f"auto for the largest cell {largest.name}: {how}"
    notify(f"sweep {name}: batch size {size} for every cell ({origin})")
    data = base.model_dump(mode="json")
    data["train"] = {**data["train"], "batch_size": size}
    return validate_config(data, origin=f"configuration of sweep {name}")


def _run_cell(run_lib: Any, cell: Cell, cfg: RunConfig, action: str, run_dir: Path, data_dir: Path,
              runs_dir: Path, options: RunOptions) -> dict[str, Any] | None:
    """Train, resume, extend or read back one cell; its summary."""
    overrides = {f: _get(cfg, f) for f in RESUMABLE_FIELDS}
    try:
        if action == SKIP:
            return upgrade_summary(json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8")))
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
