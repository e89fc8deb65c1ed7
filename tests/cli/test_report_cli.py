"""``fintrain report`` on hand-made sweeps and runs: table, words, files, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "run_folders", Path(__file__).resolve().parents[1] / "experiments" / "run_folders.py")
run_folders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_folders)
write_run = run_folders.write_run

BASELINES = {"base_rate": {"auc": 0.5}, "always_up": {"auc": 0.5}, "logistic": {"auc": 0.52}}


@pytest.fixture
def sweep(cli):
    for budget, params, values in (("2m", 1_985_025, [0.53, 0.55, 0.54]), ("20m", 18_912_769, [0.56, 0.58, 0.57])):
        for seed, value in enumerate(values):
            write_run(cli.runs_dir, f"demo-{budget}-seed{seed}", budget=budget, seed=seed, params=params,
                      test=value, baselines=BASELINES)
    write_run(cli.runs_dir, "demo-20m-seed3", budget="20m", seed=3, status="interrupted")
    write_run(cli.runs_dir, "demo-v2-2m-seed0", test=0.9)  # another sweep: not included
    return cli.runs_dir


def test_report_sweep_table_words_and_plots(cli, sweep):
    pytest.importorskip("matplotlib")
    from fintrain.experiments.plots import png_size

    result = cli("report", "--sweep", "demo")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # undo the table's wrapping
    assert "0.5400" in out and "0.5700" in out and "18.9M" in out
    assert "20m beats the logistic baseline beyond seed noise" in out
    assert "2m is not distinguishable from the logistic baseline" in out
    assert "20m improves on 2m beyond seed noise (auc +0.0300 [+0.0073, +0.0527])" in out
    assert "Student-t intervals over seeds" in out
    assert "demo-20m-seed3 (interrupted)" in result.stderr
    folder = sweep / "reports" / "demo"
    assert png_size(folder / "scaling.png") == (1200, 700)
    assert png_size(folder / "loss_curves.png") == (1200, 450)
    assert png_size(folder / "temperature.png") == (1200, 700)  # 6 runs: two rows of three
    document = json.loads((folder / "report.json").read_text())
    assert document["budgets"][0]["runs"] == ["demo-2m-seed0", "demo-2m-seed1", "demo-2m-seed2"]


def test_report_runs_by_name_to_out_as_json(cli, sweep, tmp_path):
    result = cli("report", "demo-2m-seed0", "demo-2m-seed1", str(sweep / "demo-20m-seed0"),
                 "--out", str(tmp_path / "rep"), "--no-plots", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [b["budget"] for b in document["budgets"]] == ["2m", "20m"]
    assert document["budgets"][0]["mean"]["estimate"] == pytest.approx(0.54)
    assert document["comparisons"][-1]["verdict"] == "unknown"  # 20m has one seed
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["report.json", "report.md"]


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "give either run names or --sweep NAME"),
    (["demo-2m-seed0", "--sweep", "demo"], 2, "give either run names or --sweep NAME"),
    (["--sweep", "nope"], 1, "no cells of sweep 'nope'"),
    (["nope"], 1, "no run 'nope'"),
    (["demo-20m-seed3"], 1, "no finished run to report on"),
])
def test_report_errors_are_one_line(cli, sweep, args, code, message):
    result = cli("report", *args)
    assert result.exit_code == code
    assert message in result.stderr and "Traceback" not in result.output
