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
