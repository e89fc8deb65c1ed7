"""Sweeps: cells, budgets, and a real tiny sweep interrupted by Ctrl-C and resumed."""

from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

import pytest

from fintrain.config import load_config
from fintrain.errors import ConfigError
from fintrain.experiments import sweep as sweep_lib
from fintrain.train.marker import RunBusyError
from fintrain.experiments.runs import list_runs
from fintrain.train.options import RunOptions

QUIET = RunOptions(live=False)


@pytest.fixture
def tiny(tmp_path, tiny_toml):
    """Four steps a cell: the sweep machinery is under test, not the model."""
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_toml(train={"max_steps": 4, "lr": 1e-3, "log_every": 2, "warmup_steps": 2}))
    return load_config(path, environ={})


def test_parse_budgets():
    assert sweep_lib.parse_budgets("2m, 20M") == ["2m", "20m"]
    assert sweep_lib.parse_budgets("50k,300K,1.5m,5m") == ["50k", "300k", "1500k", "5m"]
    with pytest.raises(ConfigError, match=r"--budgets: unknown model budget '7x'; give a preset \(2m, 20m, 200m\)"):
        sweep_lib.parse_budgets("2m,7x")
    with pytest.raises(ConfigError, match="twice"):
        sweep_lib.parse_budgets("2m,2m")
    with pytest.raises(ConfigError, match="names 2m twice"):
        sweep_lib.parse_budgets("2m,2000k")
    with pytest.raises(ConfigError, match="empty"):
        sweep_lib.parse_budgets(" , ")


def test_cells_and_names():
    cells = sweep_lib.sweep_cells("demo-v2", ["2m", "20m"], 2)
    assert [c.name for c in cells] == ["demo-v2-2m-seed0", "demo-v2-2m-seed1", "demo-v2-20m-seed0", "demo-v2-20m-seed1"]
    assert sweep_lib.cell_pattern("demo-v2").fullmatch("demo-v2-20m-seed1")["budget"] == "20m"
    # Another sweep whose name starts the same is not this sweep's cell.
    assert sweep_lib.cell_pattern("demo").fullmatch("demo-v2-20m-seed1") is None
    with pytest.raises(ConfigError, match="sweep name"):
        sweep_lib.sweep_cells("../x", ["2m"], 1)
    with pytest.raises(ConfigError, match="at least 1"):
        sweep_lib.sweep_cells("x", ["2m"], 0)


def test_cell_config_sets_budget_and_seed_only(tiny):
    cfg = sweep_lib.cell_config(tiny, sweep_lib.Cell("20m", 3, "x-20m-seed3"))
    assert cfg.model.budget == "20m" and cfg.train.seed == 3
    assert cfg.model.d_model == 16 and cfg.data.ticker == "MSFT"


def test_a_cell_of_another_configuration_is_refused_before_any_training(tmp_path, tiny, write_run):
    write_run(tmp_path / "runs", "x-2m-seed0", ticker="SPY")
    with pytest.raises(ConfigError, match=r"x-2m-seed0 holds a run of another configuration \(.*data.ticker='SPY' in the cell, 'MSFT' now"):
        sweep_lib.run_sweep(tiny, "x", ["2m"], 1, tmp_path / "data", tmp_path / "runs", options=QUIET)
    assert not (tmp_path / "data").exists()  # nothing fetched, nothing trained


def _stored(run_dir):
    return {p: (run_dir / p).read_bytes() for p in ("summary.json", "metrics.jsonl", "checkpoints/last.pt")}


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_finished_cells(tmp_path, tiny, at_train_record):
    from fintrain.train.loop import TrainingStopped

    data, runs = tmp_path / "data", tmp_path / "runs"
    records = [0]

    def ctrl_c_in_third_cell(step):
        records[0] += 1
        if records[0] == 5:  # cells train 4 steps each, logged at 2 and 4: step 2 of the third cell
            signal.raise_signal(signal.SIGINT)

    seen = []
    options = RunOptions(live=False, sinks=(at_train_record(ctrl_c_in_third_cell),))
    with pytest.raises(TrainingStopped) as stop:
        sweep_lib.run_sweep(tiny, "s", ["2m", "20m"], 2, data, runs, options=options, on_cell=seen.append)
    assert stop.value.exit_code == 130 and stop.value.run_dir == runs / "s-20m-seed0"
    assert [(p.index, p.cell.name, p.action, p.finished) for p in seen] == [
        (0, "s-2m-seed0", "new", 0), (1, "s-2m-seed1", "new", 1), (2, "s-20m-seed0", "new", 2)]
    assert seen[2].eta_s is None  # no 20m cell timed yet
    states = {r.name: r.status for r in list_runs(runs)}
    assert states == {"s-2m-seed0": "finished", "s-2m-seed1": "finished", "s-20m-seed0": "interrupted"}
    finished_before = {name: _stored(runs / name) for name in ("s-2m-seed0", "s-2m-seed1")}

    seen.clear()
    result = sweep_lib.run_sweep(tiny, "s", ["2m", "20m"], 2, data, runs, options=QUIET, on_cell=seen.append)
    assert [(c.cell.name, c.action) for c in result.cells] == [
        ("s-2m-seed0", "skip"), ("s-2m-seed1", "skip"), ("s-20m-seed0", "resume"), ("s-20m-seed1", "new")]
    for name, files in finished_before.items():
        assert _stored(runs / name) == files  # not retrained, not rewritten
    events = [json.loads(x).get("event") for x in (runs / "s-20m-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert events.index("interrupted") < events.index("resumed")
    records = {r.name: r for r in list_runs(runs)}
    assert {r.status for r in records.values()} == {"finished"}
    assert {(r.budget, r.seed) for r in records.values()} == {("2m", 0), ("2m", 1), ("20m", 0), ("20m", 1)}
    assert all(r.steps == 4 for r in records.values())

    # A third call has nothing left to do; asking for more steps extends every cell instead.
    again = sweep_lib.run_sweep(tiny, "s", ["2m"], 1, data, runs, options=QUIET)
    assert [c.action for c in again.cells] == ["skip"]
    assert sweep_lib.plan_action(runs / "s-2m-seed0", sweep_lib.cell_config(
        load_config(None, {**tiny.model_dump(mode="json"), "train": {**tiny.model_dump(mode="json")["train"], "max_steps": 6}}, environ={}),
        sweep_lib.Cell("2m", 0, "s-2m-seed0"))) == "extend"


def test_a_cell_that_died_before_its_first_checkpoint(tmp_path, tiny, monkeypatch, write_marker, dead_pid):
    """Refused while its running.json names a live process; started over once that process is gone."""
    runs = tmp_path / "runs"
    cell = runs / "x-2m-seed0"
    cell.mkdir(parents=True)
    cfg = sweep_lib.cell_config(tiny, sweep_lib.Cell("2m", 0, "x-2m-seed0"))
    (cell / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    assert sweep_lib.plan_action(cell, cfg) == "new"
    write_marker(cell, os.getpid())
    with pytest.raises(RunBusyError, match=f"is being trained by pid {os.getpid()} on host"):
        sweep_lib.run_sweep(tiny, "x", ["20m", "2m"], 1, tmp_path / "data", runs, options=QUIET)
    assert cell.is_dir() and not (tmp_path / "data").exists()  # refused before the first cell trained
    (cell / "checkpoints").mkdir()
    (cell / "checkpoints" / "last.pt").write_bytes(b"checkpoint")
    assert sweep_lib.plan_action(cell, cfg) == "resume"  # a cell to resume is refused the same way
    with pytest.raises(RunBusyError, match="wait for it to finish or stop it"):
        sweep_lib.run_sweep(tiny, "x", ["2m"], 1, tmp_path / "data", runs, options=QUIET)
    (cell / "checkpoints" / "last.pt").unlink()
    write_marker(cell, dead_pid)

    started = []

    def fake_start_run(cfg, data_dir, runs_dir, *, run_name, **_):
        started.append(run_name)
        return SimpleNamespace(summary={"steps": 1})

    monkeypatch.setattr("fintrain.train.run.start_run", fake_start_run)
    notes = []
    result = sweep_lib.run_sweep(tiny, "x", ["2m"], 1, tmp_path / "data", runs, options=RunOptions(live=False, notify=notes.append))
    assert started == ["x-2m-seed0"] and not cell.exists() and result.cells[0].action == "new"
    assert "has no checkpoint to resume from; starting the cell again" in notes[0]


class _NoTest(dict):
    """A summary whose test metrics fail the test if anything reads them."""

    def __getitem__(self, key):
        assert key != "test", "the learning-rate choice read the test split"
        return super().__getitem__(key)

    def get(self, key, default=None):
        assert key != "test", "the learning-rate choice read the test split"
        return super().get(key, default)


def test_lr_choice_reads_validation_only():
    # The test split favours 3e-3; validation favours 1e-3, which is chosen.
    summaries = {
        0.0003: _NoTest(best_val={"auc": 0.52, "loss": 0.70}, test={"auc": 0.50}),
        0.001: _NoTest(best_val={"auc": 0.56, "loss": 0.69}, test={"auc": 0.51}),
        0.003: _NoTest(best_val={"auc": 0.54, "loss": 0.71}, test={"auc": 0.60}),
    }
    tried = {lr: sweep_lib.validation_value(s, "auc") for lr, s in summaries.items()}
    assert sweep_lib.choose_lr(tried, "auc") == 0.001
    assert not sweep_lib.at_grid_edge(0.001, list(tried))
    # Lower is better for mse; a diverged rate (no value) is passed over; ties go to the smaller rate.
    assert sweep_lib.choose_lr({0.001: 0.02, 0.003: 0.01, 0.01: None}, "mse") == 0.003
    assert sweep_lib.choose_lr({0.001: 0.5, 0.003: 0.5}, "auc") == 0.001
    assert sweep_lib.at_grid_edge(0.003, [0.001, 0.003])
    with pytest.raises(ConfigError, match="no learning rate of 0.001, 0.003 gave a validation auc"):
        sweep_lib.choose_lr({0.001: None, 0.003: None}, "auc")


def test_parse_lrs_and_cell_names():
    assert sweep_lib.parse_lrs("3e-3, 3e-4,1e-3") == [0.0003, 0.001, 0.003]
    assert sweep_lib.cell_name("s", "300k", 0, 0.0003) == "s-300k-lr0.0003-seed0"
    match = sweep_lib.cell_pattern("s").fullmatch("s-300k-lr0.0003-seed0")
    assert (match["budget"], match["lr"], match["seed"]) == ("300k", "0.0003", "0")
    for bad, message in (("", "empty"), ("1e-3,x", "'x' is not a number"), ("0", "not a learning rate"),
                         ("1e-3,0.001", "names 0.001 twice")):
        with pytest.raises(ConfigError, match=message):
            sweep_lib.parse_lrs(bad)


@pytest.mark.slow
def test_tuning_sweep_trains_seed0_at_each_rate_then_the_rest_at_the_chosen_one(tmp_path, tiny, monkeypatch):
    data, runs = tmp_path / "data", tmp_path / "runs"
    first = sweep_lib.run_sweep(tiny, "t", ["2m"], 1, data, runs, lrs="1e-3,1e-2", options=QUIET)
    assert [(c.cell.name, c.action) for c in first.cells] == [("t-2m-lr0.001-seed0", "new"), ("t-2m-lr0.01-seed0", "new")]
    val = {c.cell.lr: c.summary["best_val"]["auc"] for c in first.cells}
    chosen = sweep_lib.choose_lr(val, "auc")
    # Make the test metric of the rate not chosen the best by far: the choice must not move.
    other = next(c for c in first.cells if c.cell.lr != chosen)
    summary = json.loads((other.run_dir / "summary.json").read_text())
    summary["test"]["auc"] = 0.99
    (other.run_dir / "summary.json").write_text(json.dumps(summary))

    # The same sweep with a second seed resumes: seed 0 is read back, seed 1 trains at the chosen rate.
    again = sweep_lib.run_sweep(tiny, "t", ["2m"], 2, data, runs, lrs="1e-3,1e-2", options=QUIET)
    assert [(c.cell.name, c.action) for c in again.cells] == [
        ("t-2m-lr0.001-seed0", "skip"), ("t-2m-lr0.01-seed0", "skip"),
        (sweep_lib.cell_name("t", "2m", 1, chosen), "new")]
    assert again.cells[-1].summary is not None
    stored = json.loads((runs / sweep_lib.cell_name("t", "2m", 1, chosen) / "config.json").read_text())
    assert stored["train"]["lr"] == chosen and stored["train"]["seed"] == 1


def test_axes_cells_names_and_order():
    cells = sweep_lib.sweep_cells("d", ["50k", "1m"], 2, context_lens=[30, 120], data_fractions=[0.5, 1.0])
    assert len(cells) == 2 * 2 * 2 * 2
    assert [c.name for c in cells[:4]] == ["d-50k-ctx30-frac0.5-seed0", "d-50k-ctx30-frac0.5-seed1",
                                           "d-50k-ctx30-frac1-seed0", "d-50k-ctx30-frac1-seed1"]
    assert cells[4].name == "d-50k-ctx120-frac0.5-seed0" and cells[-1].name == "d-1m-ctx120-frac1-seed1"
    assert (cells[4].context_len, cells[4].data_fraction, cells[4].point) == (120, 0.5, ("50k", 120, 0.5))
    # One axis only: only its component; none: today's names.
    assert [c.name for c in sweep_lib.sweep_cells("d", ["2m"], 1, data_fractions=[0.25])] == ["d-2m-frac0.25-seed0"]
    assert [c.name for c in sweep_lib.sweep_cells("d", ["2m"], 1, context_lens=[60])] == ["d-2m-ctx60-seed0"]
    assert [c.name for c in sweep_lib.sweep_cells("d", ["2m"], 2)] == ["d-2m-seed0", "d-2m-seed1"]
    # Tuning: seed 0 at each rate, then the pending seeds, point by point.
    tuned = sweep_lib.sweep_cells("d", ["2m"], 2, context_lens=[30, 60], lrs=[1e-3, 3e-3])
    assert [c.name for c in tuned] == ["d-2m-ctx30-lr0.001-seed0", "d-2m-ctx30-lr0.003-seed0", "d-2m-ctx30-lr<chosen>-seed1",
                                       "d-2m-ctx60-lr0.001-seed0", "d-2m-ctx60-lr0.003-seed0", "d-2m-ctx60-lr<chosen>-seed1"]
    assert tuned[2].pending and tuned[2].at_rate("d", 0.003).name == "d-2m-ctx30-lr0.003-seed1"
    match = sweep_lib.cell_pattern("d").fullmatch("d-300k-ctx120-frac0.25-lr0.001-seed2")
    assert (match["budget"], match["ctx"], match["frac"], match["lr"], match["seed"]) == ("300k", "120", "0.25", "0.001", "2")
    assert sweep_lib.cell_pattern("d").fullmatch("d-2m-seed0")["ctx"] is None


def test_parse_context_lens_and_fractions():
    assert sweep_lib.parse_context_lens("120, 30,60") == [30, 60, 120]
    assert sweep_lib.parse_fractions("1,0.25,0.5") == [0.25, 0.5, 1.0]
    for text, message in (("", "empty"), ("30,x", "'x' is not a whole number"), ("1", "from 2 to 4096"),
                          ("30,30", "names 30 twice")):
        with pytest.raises(ConfigError, match=message):
            sweep_lib.parse_context_lens(text)
    for text, message in (("0", r"not a share of the training period in \(0, 1\]"), ("1.5", "not a share"),
                          ("0.5,half", "'half' is not a number"), ("0.5,0.5", "names 0.5 twice")):
        with pytest.raises(ConfigError, match=message):
            sweep_lib.parse_fractions(text)


def test_cell_config_sets_context_and_fraction_only_when_given(tiny):
    cfg = sweep_lib.cell_config(tiny, sweep_lib.Cell("2m", 1, "x", None, 16, 0.5))
    assert (cfg.split.context_len, cfg.split.data_fraction, cfg.train.seed) == (16, 0.5, 1)
    plain = sweep_lib.cell_config(tiny, sweep_lib.Cell("2m", 0, "x"))
    assert (plain.split.context_len, plain.split.data_fraction) == (tiny.split.context_len, 1.0)


class _FakeTrainer:
    """start_run/resume_run/plan_batch_size that write a finished run folder instantly."""

    def __init__(self, monkeypatch, val=lambda cfg: 0.5, batch=(48, "probe-batch cache")):
        self.started, self.planned, self.val = [], [], val
        self.batch = batch
        monkeypatch.setattr("fintrain.train.run.start_run", self.start_run)
        monkeypatch.setattr("fintrain.train.run.plan_batch_size", self.plan_batch_size)

    def plan_batch_size(self, cfg, data_dir, notify):
        self.planned.append(cfg)
        return self.batch

    def start_run(self, cfg, data_dir, runs_dir, *, run_name, **_):
        self.started.append((run_name, cfg))
        run = runs_dir / run_name
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
        summary = {"steps": 4, "best_val": {"auc": self.val(cfg)}, "test": {"auc": 0.5}}
        (run / "summary.json").write_text(json.dumps(summary))
        return SimpleNamespace(summary=summary)


def test_sweep_with_axes_trains_the_product_and_resumes_by_name(tmp_path, tiny, monkeypatch):
    trainer = _FakeTrainer(monkeypatch)
    runs = tmp_path / "runs"
    args = (tiny, "g", ["2m", "20m"], 2, tmp_path / "data", runs)
    axes = {"context_lens": "16,8", "data_fractions": "1,0.5"}
    first = sweep_lib.run_sweep(*args, **axes, options=QUIET)
    assert len(first.cells) == 16 and {c.action for c in first.cells} == {"new"}
    stored = json.loads((runs / "g-20m-ctx16-frac0.5-seed1" / "config.json").read_text())
    assert (stored["split"]["context_len"], stored["split"]["data_fraction"], stored["model"]["budget"],
            stored["train"]["seed"]) == (16, 0.5, "20m", 1)
    assert sweep_lib.find_cells("g", runs) == sorted(runs / c.cell.name for c in first.cells)
    # The same command again: every cell is found by its name and skipped; nothing trains.
    trainer.started.clear()
    again = sweep_lib.run_sweep(*args, **axes, options=QUIET)
    assert {c.action for c in again.cells} == {"skip"} and trainer.started == []
    # A new value on an axis trains only its cells.
    more = sweep_lib.run_sweep(*args, context_lens="8,16,32", data_fractions="0.5,1", options=QUIET)
    assert sorted(name for name, _ in trainer.started) == sorted(
        f"g-{b}-ctx32-frac{f}-seed{k}" for b in ("2m", "20m") for f in ("0.5", "1") for k in (0, 1))
    assert [c.action for c in more.cells].count("skip") == 16


def test_sweep_without_axes_keeps_its_cells_and_old_folders_without_the_new_field(tmp_path, tiny, monkeypatch):
    """A sweep started before data_fraction existed resumes: its cells' config.json lack the field."""
    _FakeTrainer(monkeypatch)
    runs = tmp_path / "runs"
    sweep_lib.run_sweep(tiny, "o", ["2m"], 2, tmp_path / "data", runs, options=QUIET)
    for cell in ("o-2m-seed0", "o-2m-seed1"):
        stored = json.loads((runs / cell / "config.json").read_text())
        del stored["split"]["data_fraction"]
        (runs / cell / "config.json").write_text(json.dumps(stored))
    again = sweep_lib.run_sweep(tiny, "o", ["2m"], 2, tmp_path / "data", runs, options=QUIET)
    assert [(c.cell.name, c.action) for c in again.cells] == [("o-2m-seed0", "skip"), ("o-2m-seed1", "skip")]


def test_tuning_per_point_with_axes(tmp_path, tiny, monkeypatch):
    # Validation prefers 1e-3 at context 8 and 3e-3 at context 16: each point keeps its own choice.
    best = {8: 0.001, 16: 0.003}
    trainer = _FakeTrainer(monkeypatch, val=lambda cfg: 0.6 if cfg.train.lr == best[cfg.split.context_len] else 0.5)
    result = sweep_lib.run_sweep(tiny, "t", ["2m"], 2, tmp_path / "data", tmp_path / "runs", lrs="1e-3,3e-3",
                                 context_lens="8,16", options=QUIET)
    assert [c.cell.name for c in result.cells] == [
        "t-2m-ctx8-lr0.001-seed0", "t-2m-ctx8-lr0.003-seed0", "t-2m-ctx8-lr0.001-seed1",
        "t-2m-ctx16-lr0.001-seed0", "t-2m-ctx16-lr0.003-seed0", "t-2m-ctx16-lr0.003-seed1"]
    assert trainer.started[2][1].train.lr == 0.001 and trainer.started[5][1].train.lr == 0.003


def test_auto_batch_size_resolves_once_for_the_largest_cell_and_is_kept(tmp_path, tiny, monkeypatch):
    base = load_config(None, {**tiny.model_dump(mode="json"),
                              "train": {**tiny.model_dump(mode="json")["train"], "batch_size": "auto"}}, environ={})
    trainer = _FakeTrainer(monkeypatch, batch=(48, "probe-batch cache"))
    notes = []
    options = RunOptions(live=False, notify=notes.append)
    runs = tmp_path / "runs"
    sweep_lib.run_sweep(base, "b", ["2m", "20m"], 1, tmp_path / "data", runs, context_lens="8,16",
                        data_fractions="0.5,1", options=options)
    (planned,) = trainer.planned  # resolved once ...
    assert (planned.model.budget, planned.split.context_len, planned.split.data_fraction) == ("20m", 16, 1.0)
    assert {cfg.train.batch_size for _, cfg in trainer.started} == {48}  # ... and shared by every cell
    assert "sweep b: batch size 48 for every cell (auto for the largest cell b-20m-ctx16-frac1-seed0: probe-batch cache)" in notes
    # A rerun with more cells takes the recorded size, even when the probe cache now says otherwise.
    trainer.batch, trainer.planned, trainer.started = (256, "probe-batch cache"), [], []
    notes.clear()
    sweep_lib.run_sweep(base, "b", ["2m", "20m"], 2, tmp_path / "data", runs, context_lens="8,16",
                        data_fractions="0.5,1", options=options)
    assert trainer.planned == [] and len(trainer.started) == 8
    assert {cfg.train.batch_size for _, cfg in trainer.started} == {48}
    assert notes[0].startswith("sweep b: batch size 48 for every cell (as recorded by cell b-20m-")
    # A given size is used as it is, with nothing resolved.
    assert sweep_lib.run_sweep(tiny, "n", ["2m"], 1, tmp_path / "data", runs, options=QUIET).cells[0].action == "new"
    assert trainer.planned == [] and trainer.started[-1][1].train.batch_size == tiny.train.batch_size
