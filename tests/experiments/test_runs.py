"""Reading run folders back: status, progress and metrics of finished, stopped and interrupted runs."""

from __future__ import annotations

import json
import os
import time

import pytest

from fintrain.train.marker import FOREIGN_LIVE_S
from fintrain.experiments.runs import (
    FINISHED,
    INTERRUPTED,
    RUNNING,
    THERMAL_STOP,
    RunError,
    list_runs,
    read_run,
    resolve_run,
)

NOW = 2_000_000_000.0


def test_each_way_a_run_can_end_is_told_apart(tmp_path, write_run, write_marker, dead_pid):
    write_run(tmp_path, "done", status="finished", test=0.57, temps=[60.0, 71.5, 68.0, 66.0])
    write_run(tmp_path, "hot", status="thermal_stop", steps=30)
    write_run(tmp_path, "ctrl-c", status="interrupted", steps=20)
    write_run(tmp_path, "killed", status="killed", steps=20, mtime=time.time())
    write_marker(write_run(tmp_path, "killed-9", status="killed", steps=20, mtime=time.time()), dead_pid)
    write_marker(write_run(tmp_path, "training", status="killed", steps=20), os.getpid())
    write_marker(write_run(tmp_path, "resumed", status="resumed", steps=20), os.getpid())
    write_run(tmp_path, "resumed-then-killed", status="resumed", steps=20)
    write_marker(write_run(tmp_path, "extending", status="finished"), os.getpid())
    (tmp_path / "reports").mkdir()  # not a run folder: left out

    runs = {r.name: r for r in list_runs(tmp_path)}
    assert list(runs) == sorted(runs) and "reports" not in runs
    assert runs["done"].status == FINISHED
    assert runs["hot"].status == THERMAL_STOP and runs["hot"].status_label == "stopped (thermal)"
    assert runs["ctrl-c"].status == INTERRUPTED
    # No recorded end and no live process: interrupted, however fresh its files are, and
    # whether or not a kill -9 left its marker behind.
    assert runs["killed"].status == INTERRUPTED and runs["killed-9"].status == INTERRUPTED
    assert runs["resumed-then-killed"].status == INTERRUPTED
    # A live marker is running, whatever the files say: old files, a resume after an
    # interrupt, a finished run given more steps.
    assert runs["training"].status == RUNNING
    assert runs["resumed"].status == RUNNING
    assert runs["extending"].status == RUNNING
    assert all(r.resumable for r in runs.values())


def test_a_marker_from_another_host_is_running_until_the_bound(tmp_path, write_run, write_marker):
    marker = write_marker(write_run(tmp_path, "r", status="killed"), 1, hostname="some-other-host.example",
                          started_at="2033-05-18T03:33:20+00:00")
    assert read_run(tmp_path / "r", now=marker.started_s() + 3600).status == RUNNING
    assert read_run(tmp_path / "r", now=marker.started_s() + FOREIGN_LIVE_S + 1).status == INTERRUPTED


def test_finished_run_reports_its_summary(tmp_path, write_run):
    write_run(tmp_path, "done", budget="20m", seed=3, params=18_912_769, steps=40, test=0.57,
              temps=[60.0, 71.5, None, 66.0])
    r = read_run(tmp_path / "done", now=NOW)
    assert (r.budget, r.seed, r.ticker, r.tier, r.task) == ("20m", 3, "MSFT", "a20", "threshold")
    assert r.params == 18_912_769 and r.steps == 40 and r.test == 0.57 and r.best_val == 0.56
    assert r.seconds == 120.0 and r.temp_max_c == 71.5 and r.primary_metric == "auc"
    row = r.to_json()
    assert json.loads(json.dumps(row)) == row and row["status"] == "finished"


def test_unfinished_run_reports_progress_from_its_metrics(tmp_path, write_run):
    write_run(tmp_path, "hot", status="thermal_stop", steps=40, temps=[70.0, 88.0, 93.5, 96.0])
    r = read_run(tmp_path / "hot", now=NOW)
    assert r.test is None and r.params is None and r.summary is None
    assert r.steps == 40  # the last logged step
    assert r.seconds == 120.0 and r.temp_max_c == 96.0
    # Best epoch by validation loss (the last, here): its AUC.
    assert r.best_val == pytest.approx(0.54)
    assert [e.event for e in r.events][-1] == "thermal_stop"


def test_torn_last_line_is_ignored(tmp_path, write_run):
    run = write_run(tmp_path, "torn", status="interrupted", steps=20)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "train", "step": 3')  # a kill -9 mid-write
    assert read_run(run, now=NOW).steps == 20


def test_return_task_uses_mse_lower_is_better(tmp_path, write_run):
    write_run(tmp_path, "ret", task="return", status="killed", steps=40)
    r = read_run(tmp_path / "ret", now=NOW)
    assert r.primary_metric == "mse"
    # The best epoch by validation loss is the last one logged (step 40).
    assert r.best_val == pytest.approx(0.54)


def test_missing_and_damaged_folders_are_clear_errors(tmp_path, write_run, caplog):
    with pytest.raises(RunError, match="no run folder"):
        read_run(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunError, match="not a fintrain run folder"):
        read_run(tmp_path / "plain")
    run = write_run(tmp_path, "broken")
    (run / "summary.json").write_text("{not json")
    with pytest.raises(RunError, match="summary.json cannot be read"):
        read_run(run)
    write_run(tmp_path, "fine")
    assert [r.name for r in list_runs(tmp_path)] == ["fine"]  # the damaged one is skipped, with a warning
    assert "broken" in caplog.text


def test_resolve_run_by_name_or_path(tmp_path, write_run):
    run = write_run(tmp_path / "runs", "a")
    assert resolve_run("a", tmp_path / "runs") == run
    assert resolve_run(str(run), tmp_path / "elsewhere") == run
    with pytest.raises(RunError, match="runs in .*: a"):
        resolve_run("b", tmp_path / "runs")


def test_a_folder_of_the_earlier_format_reads_with_epochs_numbered_from_1(tmp_path, write_run):
    """Format 1 (no marker in metrics.jsonl, no format_version in summary.json) held 0-based epochs."""
    run = read_run(write_run(tmp_path, "old", status="finished", steps=40))
    assert run.summary["best_epoch"] == 2 and run.summary["format_version"] == 2  # stored 1: the second epoch
    epochs = [r for r in run.records if type(r).__name__ == "EpochRecord"]
    assert [(r.epoch, r.step) for r in epochs] == [(1, 20), (2, 40)]
    trains = [r for r in run.records if type(r).__name__ == "TrainRecord"]
    assert {r.epoch for r in trains} == {1}
    # The checkpoint at an epoch's end names that epoch, as the present loop writes it.
    assert [(e.step, e.epoch) for e in run.events if e.event == "checkpoint"] == [(20, 1), (40, 2)]
    resumed = read_run(write_run(tmp_path, "old-resumed", status="resumed", steps=20))
    assert [(e.event, e.epoch) for e in resumed.events][-1] == ("resumed", 1)  # stored 0: continues in epoch 1
