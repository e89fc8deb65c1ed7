"""``fintrain runs list|show`` on hand-made run folders."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "run_folders", Path(__file__).resolve().parents[1] / "experiments" / "run_folders.py")
run_folders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_folders)
write_run = run_folders.write_run
write_marker = run_folders.write_marker


@pytest.fixture
def runs(cli):
    write_run(cli.runs_dir, "a-finished", budget="20m", params=18_912_769, test=0.5731, temps=[61.0, 74.4, 70.0, 69.0])
    write_run(cli.runs_dir, "b-hot", status="thermal_stop", steps=30, temps=[80.0, 93.0, 97.2])
    write_run(cli.runs_dir, "c-ctrl-c", status="interrupted", steps=20)
    (cli.runs_dir / "reports").mkdir()
    return cli.runs_dir


def test_list_table(cli, runs):
    result = cli("runs", "list")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip().startswith(("a-", "b-", "c-"))}
    assert set(lines) == {"a-finished", "b-hot", "c-ctrl-c"}
    assert "finished" in lines["a-finished"] and "18,912,769" in lines["a-finished"] and "0.5731" in lines["a-finished"]
    assert "2m00s" in lines["a-finished"] and "74" in lines["a-finished"]
    assert "stopped (thermal)" in lines["b-hot"] and "97" in lines["b-hot"]
    assert "interrupted" in lines["c-ctrl-c"]
    assert "reports" not in result.stdout.split("runs in")[1].split("\n", 1)[1]


def test_list_json_is_one_object_per_run(cli, runs):
    result = cli("runs", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [(r["name"], r["status"]) for r in rows] == [
        ("a-finished", "finished"), ("b-hot", "thermal_stop"), ("c-ctrl-c", "interrupted")]
    assert rows[0]["params"] == 18_912_769 and rows[0]["test"] == 0.5731 and rows[0]["temp_max_c"] == 74.4
    assert rows[1]["test"] is None and rows[1]["steps"] == 30 and rows[1]["resumable"]


def test_list_runs_dir_option_and_empty_folder(cli, runs, tmp_path):
    assert "no runs in" in cli("runs", "list", "--runs-dir", str(tmp_path / "empty")).stdout
    assert json.loads(cli("--runs-dir", str(tmp_path / "empty"), "runs", "list", "--json").stdout) == []
    assert len(json.loads(cli("runs", "list", "--runs-dir", str(runs), "--json").stdout)) == 3


def test_show_finished_run(cli, runs):
    result = cli("runs", "show", "a-finished")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "a-finished  finished" in out and "budget 20m" in out
    assert 'ticker="MSFT"' in out and 'budget="20m"' in out  # the configuration
    assert "PatchTST 20m" in out and "logistic" in out and "0.5731" in out  # metrics beside baselines
    assert "checkpoint" in out and "saved last.pt at step 20" in out  # events


def test_show_stopped_run_says_how_to_continue(cli, runs):
    result = cli("runs", "show", str(runs / "b-hot"))
    assert result.exit_code == 0
    assert "no test metrics yet (stopped (thermal)" in result.stdout
    assert f"fintrain train --resume {runs / 'b-hot'}" in result.stdout.replace("\n", "")
    assert "thermal_stop" in result.stdout and "stopped: thermal critical 97 C" in result.stdout


def test_running_only_while_the_marker_s_process_lives(cli):
    """A live running.json (this test's own pid) is running; a kill -9's leftover (a reaped pid)
    or fresh files without a marker are interrupted."""
    write_marker(write_run(cli.runs_dir, "live", status="killed", steps=20), os.getpid())
    write_marker(write_run(cli.runs_dir, "killed-9", status="killed", steps=20, mtime=time.time()), run_folders.dead_pid())
    write_run(cli.runs_dir, "no-marker", status="killed", steps=20, mtime=time.time())
    rows = json.loads(cli("runs", "list", "--json").stdout)
    assert [(r["name"], r["status"]) for r in rows] == [
        ("killed-9", "interrupted"), ("live", "running"), ("no-marker", "interrupted")]
    table = cli("runs", "list").stdout
    assert [line.split()[1] for line in table.splitlines() if line.strip().startswith(("live", "killed", "no-"))] == [
        "interrupted", "running", "interrupted"]
    live = cli("runs", "show", "live").stdout
    assert "no test metrics yet (running" in live and "--resume" not in live  # no resume hint while it trains
    assert "fintrain train --resume" in cli("runs", "show", "killed-9").stdout.replace("\n", "")


def test_show_json(cli, runs):
    document = json.loads(cli("runs", "show", "c-ctrl-c", "--json").stdout)
    assert document["status"] == "interrupted" and document["summary"] is None
    assert document["config"]["data"]["ticker"] == "MSFT"
    assert [e["event"] for e in document["events"]][-1] == "interrupted"


def test_show_unknown_run_is_one_clear_line(cli, runs):
    result = cli("runs", "show", "zzz")
    assert result.exit_code == 1
    assert "no run 'zzz'" in result.stderr and "a-finished" in result.stderr
    assert "Traceback" not in result.output


def test_show_prints_intervals_trading_and_verdicts_as_train_does(cli):
    run = write_run(cli.runs_dir, "judged", test=0.55)
    summary = json.loads((run / "summary.json").read_text())
    summary["test_ci"] = {"auc": [0.52, 0.58]}
    summary["baselines"]["gbdt"] = {"auc": 0.581, "ci": {"auc": [0.55, 0.61]}}
    summary["comparisons"] = {"gbdt": {"metric": "auc", "diff": -0.031, "ci": [-0.058, -0.004], "verdict": "worse"}}
    summary["trading"] = {
        "PatchTST": {"ann_return": 0.12, "ann_vol": 0.15, "sharpe": 0.8, "max_drawdown": 0.1, "turnover": 0.05,
                     "exposure": 0.4, "cut_quantile": 0.7,
                     "vs_buy_and_hold": {"metric": "sharpe", "diff": 0.1, "ci": [-0.3, 0.5], "verdict": "indistinguishable"}},
        "gbdt": {"ann_return": 0.1, "ann_vol": 0.14, "sharpe": 0.71, "max_drawdown": 0.12, "turnover": 0.07,
                 "exposure": 0.5, "cut_quantile": 0.6,
                 "vs_buy_and_hold": {"metric": "sharpe", "diff": 0.01, "ci": [-0.4, 0.4], "verdict": "indistinguishable"}},
        "buy_and_hold": {"ann_return": 0.11, "ann_vol": 0.16, "sharpe": 0.7, "max_drawdown": 0.2, "turnover": 0.001,
                         "exposure": 1.0, "days": 200},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    out = cli("runs", "show", "judged").stdout
    assert "PatchTST 2m vs gbdt: AUC -0.031 (95% CI -0.058..-0.004), worse" in out
    assert "trading view" in out and "buy_and_hold" in out and "+12.0%" in out and "-0.30..+0.50 indistinguishable" in out
    assert "0.5200..0.5800" in out  # the model's interval column


def test_show_prints_each_test_value_once_and_rates_as_percentages(cli):
    run = write_run(cli.runs_dir, "r", status="finished")
    summary = json.loads((run / "summary.json").read_text())
    summary["test"] = {"loss": 0.41235, "auc": 0.5612, "accuracy": 0.61, "brier": 0.2, "log_loss": 0.4123502,
                       "pos_rate": 0.0009921}
    summary["baselines"] = {"base_rate": {"auc": 0.5, "log_loss": 0.45, "pos_rate": 0.0}}
    (run / "summary.json").write_text(json.dumps(summary))
    result = cli("runs", "show", "r")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "log_loss" in line)
    assert " loss " not in header.replace("log_loss", ""), "the loss column repeats log_loss"
    assert "0.4124" in result.stdout and "0.10%" in result.stdout and "9.921e-04" not in result.stdout
    # A loss that differs from log_loss (a pos_weight run's weighted BCE) keeps its column.
    summary["test"]["loss"] = 0.52
    (run / "summary.json").write_text(json.dumps(summary))
    assert "0.5200" in cli("runs", "show", "r").stdout


def _import_msft(cli, tmp_path) -> str:
    """Imports 300 rows of MSFT as a CSV would come from a broker; returns the raw md5."""
    import polars as pl
    from bokeh_sampledata import stocks

    d = stocks.MSFT
    pl.DataFrame({k: d[k] for k in ("date", "open", "high", "low", "close", "volume")}).head(300).write_csv(
        tmp_path / "msft_broker.csv")
    assert cli("data", "import", str(tmp_path / "msft_broker.csv"), "--ticker", "MSFT").exit_code == 0
    return json.loads(cli("data", "list", "--json").stdout)[0]["md5"]


def test_show_says_where_the_data_came_from_not_the_configured_default(cli, tmp_path):
    """A run on imported data whose configuration kept the default source (yahoo)."""
    run = write_run(cli.runs_dir, "imported", ticker="SPY")
    config = json.loads((run / "config.json").read_text())
    config["data"]["source"] = "yahoo"
    (run / "config.json").write_text(json.dumps(config))
    (run / "data.json").write_text(json.dumps({"raw": {"SPY": "a" * 32}, "features": {"SPY": "b" * 32},
                                               "source": {"SPY": "import:SPY_daily_1993-2021.csv"}}))
    result = cli("runs", "show", "imported", env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert 'source="import:SPY_daily_1993-2021.csv"' in result.stdout
    assert 'source="yahoo"' not in result.stdout
    document = json.loads(cli("runs", "show", "imported", "--json").stdout)
    assert document["data_sources"] == {"SPY": "import:SPY_daily_1993-2021.csv"}
    assert json.loads(cli("runs", "list", "--json").stdout)[0]["data_sources"] == {"SPY": "import:SPY_daily_1993-2021.csv"}


def test_show_of_an_older_run_looks_its_data_up_in_the_manifest(cli, tmp_path):
    md5 = _import_msft(cli, tmp_path)
    run = write_run(cli.runs_dir, "older")
    (run / "data.json").write_text(json.dumps({"raw": {"MSFT": md5}, "features": {"MSFT": "b" * 32}}))
    out = cli("runs", "show", "older", env={"COLUMNS": "300"}).stdout
    assert 'source="import:msft_broker.csv" (from the data folder\'s manifest)' in out
    assert json.loads(cli("runs", "show", "older", "--json").stdout)["data_sources"] == {"MSFT": "import:msft_broker.csv"}


def test_show_of_a_run_that_recorded_nothing_says_the_source_is_the_configured_one(cli):
    write_run(cli.runs_dir, "oldest")
    out = cli("runs", "show", "oldest", env={"COLUMNS": "300"}).stdout
    assert 'source="sample" (configured; the run did not record where its data came from)' in out
