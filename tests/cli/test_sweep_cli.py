"""``fintrain sweep`` through the real command: a thermal stop exits 3, the same command resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def tiny(tmp_path, tiny_toml):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_toml(train={"warmup_steps": 2}))
    return path


def test_unknown_budget_exits_2_before_any_work(cli, tiny):
    result = cli("sweep", "--name", "s", "--config", str(tiny), "--budgets", "2m,9x")
    assert result.exit_code == 2
    assert "--budgets: unknown model budget '9x'" in result.stderr
    assert not cli.data_dir.exists() and not cli.runs_dir.exists()


@pytest.mark.slow
def test_thermal_stop_exits_3_and_the_same_sweep_resumes(cli, tiny):
    trace = cli.root / "hot.csv"
    trace.write_text("t_s,temp_c,pressure\n" + "".join(f"{t},99,\n" for t in range(60)))
    args = ["sweep", "--name", "s", "--config", str(tiny), "--budgets", "2m,20m", "--max-steps", "3"]
    # No critical dwell: the stop comes from the first reading, however fast the steps run.
    hot = cli(*args, "--thermal-source", f"replay:{trace}?speed=50",
              env={"FINTRAIN_THERMAL__INTERVAL_S": "0.02", "FINTRAIN_THERMAL__CRITICAL_DWELL_S": "0"})
    assert hot.exit_code == 3, hot.output
    assert "sweep s 1/2: s-2m-seed0 (new)" in hot.stderr
    assert "stopped:" in hot.stderr and "thermal critical" in hot.stderr
    assert "run the same `fintrain sweep --name s ...` command again" in hot.stderr
    first = cli.runs_dir / "s-2m-seed0"
    assert (first / "checkpoints" / "last.pt").is_file() and not (first / "summary.json").exists()
    assert not (cli.runs_dir / "s-20m-seed0").exists()  # the sweep ended with the stopped cell

    # Cooler now: the thermal source may change between calls, the experiment may not.
    done = cli(*args, "--thermal-source", "none", "--json")
    assert done.exit_code == 0, done.output
    cells = json.loads(done.stdout)["cells"]
    assert [(c["name"], c["action"]) for c in cells] == [("s-2m-seed0", "resume"), ("s-20m-seed0", "new")]
    assert all(c["summary"]["steps"] == 3 and c["summary"]["status"] == "finished" for c in cells)
    assert "s-2m-seed0 (resuming)" in done.stderr

    again = cli(*args, "--thermal-source", "none")
    assert again.exit_code == 0
    assert "skipped" in again.stdout and "fintrain report --sweep s" in again.stdout

    clash = cli(*args, "--thermal-source", "none", "--lr", "0.1")
    assert clash.exit_code == 2 and "train.lr=0.0003 in the cell, 0.1 now" in clash.stderr


def test_lr_and_lrs_together_exit_2_before_any_work(cli, tiny):
    result = cli("sweep", "--name", "s", "--config", str(tiny), "--lr", "1e-3", "--lrs", "1e-3,3e-3")
    assert result.exit_code == 2
    assert "give --lr (one rate for every cell) or --lrs (tune each budget), not both" in result.stderr
    bad = cli("sweep", "--name", "s", "--config", str(tiny), "--lrs", "1e-3,fast")
    assert bad.exit_code == 2 and "--lrs: 'fast' is not a number" in bad.stderr
    assert not cli.data_dir.exists() and not cli.runs_dir.exists()


def test_bad_axis_values_exit_2_before_any_work(cli, tiny):
    both = cli("sweep", "--name", "s", "--config", str(tiny), "--context-len", "30", "--context-lens", "30,60")
    assert both.exit_code == 2 and "give --context-len (one look-back for every cell) or --context-lens" in both.stderr
    for option, value, message in (("--data-fractions", "0.5,2", "--data-fractions: '2' is not a share of the training period in (0, 1]"),
                                   ("--context-lens", "30,1", "--context-lens: 1 is not a context length from 2 to 4096 rows")):
        result = cli("sweep", "--name", "s", "--config", str(tiny), option, value)
        assert result.exit_code == 2 and message in result.stderr
    assert not cli.data_dir.exists() and not cli.runs_dir.exists()


@pytest.mark.slow
def test_context_and_fraction_sweep_then_its_report(cli, tiny):
    """Four real cells: two look-backs x two data fractions; the report studies both axes."""
    import polars as pl

    args = ["sweep", "--name", "ax", "--config", str(tiny), "--budgets", "2m", "--context-lens", "16,32",
            "--data-fractions", "0.5,1", "--max-steps", "3", "--thermal-source", "none", "--json"]
    done = cli(*args)
    assert done.exit_code == 0, done.output
    names = [c["name"] for c in json.loads(done.stdout)["cells"]]
    assert names == ["ax-2m-ctx16-frac0.5-seed0", "ax-2m-ctx16-frac1-seed0", "ax-2m-ctx32-frac0.5-seed0",
                     "ax-2m-ctx32-frac1-seed0"]
    # Data fraction: the same validation and test windows, half the training period.
    half, full = (pl.read_parquet(cli.runs_dir / f"ax-2m-ctx32-frac{f}-seed0" / "predictions.parquet") for f in ("0.5", "1"))
    assert half.select("split", "date", "label").equals(full.select("split", "date", "label"))
    windows = {f: json.loads((cli.runs_dir / f"ax-2m-ctx32-frac{f}-seed0" / "summary.json").read_text())["windows"]
               for f in ("0.5", "1")}
    assert windows["0.5"]["test"] == windows["1"]["test"] and windows["0.5"]["train"] < 0.55 * windows["1"]["train"]

    report = cli("report", "--sweep", "ax", "--json")
    assert report.exit_code == 0, report.output
    document = json.loads(report.stdout)
    assert [a["axis"] for a in document["axes"]] == ["size", "context", "fraction"]
    context = document["axes"][1]
    assert [v["value"] for v in context["values"]] == ["16", "32"] and context["held"] == {"budget": "2m", "data_fraction": 1.0}
    assert context["method"].startswith("95% percentile intervals from 1000 resamples of the seeds and of 20-day blocks")
    assert set(context["baseline_bands"]) == {"logistic", "gbdt"}
    assert context["fit"]["reason"].startswith("2 distinct context length values")
    assert document["compute"]["curves"][0]["points"] and document["compute"]["frontier"]
    files = {Path(f).name for f in document["files"]}
    assert {"scaling.png", "scaling_context.png", "scaling_fraction.png", "compute.png", "loss_curves.png"} <= files


@pytest.mark.slow
def test_dry_run_lists_every_planned_cell_with_an_estimate_and_writes_no_run(cli, tiny, monkeypatch):
    from fintrain.experiments import sweep as sweep_lib

    args = ["sweep", "--name", "s", "--config", str(tiny), "--budgets", "50k,100k", "--seeds", "2",
            "--lrs", "1e-3,3e-3", "--max-steps", "6", "--dry-run"]
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [c["name"] for c in plan["cells"]] == [
        "s-50k-lr0.001-seed0", "s-50k-lr0.003-seed0", "s-50k-lr<chosen>-seed1",
        "s-100k-lr0.001-seed0", "s-100k-lr0.003-seed0", "s-100k-lr<chosen>-seed1",
    ]
    assert all(c["action"] == "new" and c["total_steps"] == 6 and c["estimated_s"] > 0 for c in plan["cells"])
    assert plan["estimated_s"] == pytest.approx(sum(c["estimated_s"] for c in plan["cells"]))
    # The tiny config fixes the architecture: one model shape, timed once for all six cells.
    assert result.stderr.count("timed ") == 1
    assert not cli.runs_dir.exists()
    # The cells are the sweep's own plan: a cell the plan gains is listed and estimated too.
    planned = sweep_lib.sweep_cells
    monkeypatch.setattr(sweep_lib, "sweep_cells", lambda *a, **k: [*planned(*a, **k), sweep_lib.Cell("50k", 9, "s-extra")])
    table = cli(*args)
    assert table.exit_code == 0, table.output
    assert "s-extra" in table.stdout and "7 cells" in table.stdout and "nothing trained" in table.stdout
    assert not cli.runs_dir.exists()
    # The context and fraction axes: each look-back prepares its own windows and model shape.
    monkeypatch.undo()
    axes = cli("sweep", "--name", "s", "--config", str(tiny), "--budgets", "50k", "--context-lens", "16,32",
               "--data-fractions", "0.5,1", "--dry-run", "--json")
    assert axes.exit_code == 0, axes.output
    cells = json.loads(axes.stdout)["cells"]
    assert [c["name"] for c in cells] == ["s-50k-ctx16-frac0.5-seed0", "s-50k-ctx16-frac1-seed0",
                                          "s-50k-ctx32-frac0.5-seed0", "s-50k-ctx32-frac1-seed0"]
    assert axes.stderr.count("timed ") == 2
    assert not cli.runs_dir.exists()
