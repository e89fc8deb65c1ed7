"""``fintrain train`` end to end through the CLI, on the offline sample data, with a tiny model."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch

from fintrain.config import load_config
from fintrain.errors import ConfigError
from fintrain.storage import utc_now
from fintrain.train import run as run_lib
from fintrain.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory, tiny_toml) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(tiny_toml(model={"dropout": 0.1},
                              train={"epochs": 2, "lr": 1e-3, "log_every": 5, "warmup_steps": 5}))
    return path


@pytest.fixture(scope="module")
def reference(tiny_config: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """Final weights of an uninterrupted run of the tiny config, which every resume must match."""
    root = tmp_path_factory.mktemp("reference")
    cfg = load_config(tiny_config, environ={})
    run_lib.start_run(cfg, root / "data", root / "runs", run_name="full", options=QUIET)
    return _weights(root / "runs" / "full")


QUIET = run_lib.RunOptions(live=False)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_run_folder_files_and_schemas(cli, tiny_config):
    result = cli("train", "--config", str(tiny_config), "--run-name", "r1")
    assert result.exit_code == 0, result.output
    run = cli.runs_dir / "r1"
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.jsonl", "summary.json", "checkpoints", "tb",
                                                "predictions.parquet", "equity.png"}
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["ticker"] == "MSFT" and config["train"]["batch_size"] == 64
    summary = json.loads((run / "summary.json").read_text())
    assert isinstance(summary["params"], int) and summary["params"] > 0
    assert set(summary["test"]) == {"loss", "auc", "accuracy", "brier", "log_loss", "pos_rate"}
    assert set(summary["baselines"]) == {"base_rate", "always_up", "logistic", "gbdt"}
    for metrics in summary["baselines"].values():
        assert set(metrics) == {"auc", "accuracy", "brier", "log_loss", "pos_rate", "ci"}
        lo, hi = metrics["ci"]["auc"]
        assert math.isfinite(lo) and lo <= metrics["auc"] <= hi
    assert summary["selected_on"] == "auc"
    assert set(summary["test_ci"]) == set(summary["test"]) - {"loss"}
    assert all(math.isfinite(v) for ci in summary["test_ci"].values() for v in ci)
    assert set(summary["comparisons"]) == set(summary["baselines"])
    for c in summary["comparisons"].values():
        assert c["metric"] == "auc" and c["verdict"] in ("better", "worse", "indistinguishable")
        assert c["ci"][0] <= c["ci"][1] and math.isfinite(c["diff"])
    assert set(summary["trading"]) == {"PatchTST", "logistic", "gbdt", "buy_and_hold"}
    for measures in summary["trading"].values():
        assert all(math.isfinite(measures[k]) for k in ("ann_return", "ann_vol", "max_drawdown", "turnover", "exposure"))
    assert "ic" not in summary  # one ticker: no cross-section
    predictions = pl.read_parquet(run / "predictions.parquet")
    assert predictions.columns == ["split", "date", "ticker", "label", "next_return", "PatchTST",
                                   "base_rate", "always_up", "logistic", "gbdt"]
    assert predictions.filter(pl.col("split") == "test").height == summary["windows"]["test"]
    assert predictions.filter(pl.col("split") == "val").height == summary["windows"]["val"]
    assert summary["device"].startswith("cpu") and summary["steps"] > 0
    assert summary["data_md5"]["raw"] and summary["data_md5"]["features"]
    assert summary["skipped_steps"] == 0
    data = json.loads((run / "data.json").read_text())
    assert data == {"raw": {"MSFT": summary["data_md5"]["raw"]}, "features": {"MSFT": summary["data_md5"]["features"]},
                    "source": {"MSFT": "sample"}}
    assert summary["samples_per_s"] > 0 and summary["best_epoch"] in (1, 2)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = {r["kind"] for r in records}
    assert {"train", "epoch", "event", "final"} <= kinds
    assert any(r.get("event") == "checkpoint" for r in records)
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 2 and "val/auc" in epochs[0]
    # Plain output (CliRunner is no terminal): no escape codes, one line per epoch.
    assert "\x1b[" not in result.output
    assert "test metrics" in result.stdout and "logistic" in result.stdout and "gbdt" in result.stdout
    assert "trading view" in result.stdout and "buy_and_hold" in result.stdout
    gbdt = summary["comparisons"]["gbdt"]
    assert (f"PatchTST 2m vs gbdt: AUC {gbdt['diff']:+.3f} (95% CI {gbdt['ci'][0]:+.3f}..{gbdt['ci'][1]:+.3f}), "
            f"{gbdt['verdict']}") in result.stdout


@pytest.mark.slow
def test_tensorboard_scalars_readable(cli, tiny_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert cli("train", "--config", str(tiny_config), "--run-name", "tb", "--max-steps", "12").exit_code == 0
    acc = EventAccumulator(str(cli.runs_dir / "tb" / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/auc", "lr", "throughput"} <= tags
    assert acc.Scalars("train/loss")[-1].step == 12


def test_max_steps_inside_first_epoch_still_validates_and_tests(cli, tiny_config):
    result = cli("train", "--config", str(tiny_config), "--run-name", "short", "--max-steps", "3", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 3 and summary["best_epoch"] == 1 and summary["epochs_completed"] == 0
    assert summary["stop_reason"] == "max_steps=3"
    # Never silent after the last step: each phase of the evaluation is named as it starts.
    for phase in ("validating epoch 1 (", "evaluating test (best.pt) (", "fitting logistic baseline",
                  "fitting gbdt baseline", "predicting test windows (", "bootstrap intervals", "drawing equity.png"):
        assert f"step 3: {phase}" in result.stderr, phase


def test_dry_run_json(cli, tiny_config):
    result = cli("train", "--config", str(tiny_config), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["params"] > 0 and plan["data"]["n_features"] == 20
    assert plan["data"]["windows"]["train"] > plan["data"]["windows"]["val"] > 0
    assert plan["config"]["model"]["d_model"] == 16
    # The plan beside the full configuration: steps, a timed estimate and where the run would go.
    steps = plan["plan"]
    assert steps["steps_per_epoch"] == -(-plan["data"]["windows"]["train"] // 64)
    assert steps["total_steps"] == 2 * steps["steps_per_epoch"] and steps["steps_timed"] == 3
    assert steps["step_s"] > 0 and steps["estimated_s"] >= steps["total_steps"] * steps["step_s"]
    assert Path(steps["run_dir"]).parent == cli.runs_dir
    assert not cli.runs_dir.exists()


def test_dry_run_prints_a_short_plan_not_the_configuration(cli, tiny_config):
    result = cli("train", "--config", str(tiny_config), "--dry-run", "--max-steps", "7", "--run-name", "planned")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) <= 12 and "{" not in result.stdout  # no JSON dump
    by_label = {line.split()[0]: line for line in lines if line.strip()}
    assert "capped by --max-steps 7: 7 steps" in by_label["steps"]
    assert "per epoch x 2 epochs" in by_label["steps"]
    assert by_label["estimate"].startswith("estimate     about ") and "s per step" in by_label["estimate"]
    assert by_label["run"].endswith(str(cli.runs_dir / "planned"))
    assert not cli.runs_dir.exists()


def test_dry_run_shows_the_shape_of_any_size(cli, tmp_path, tiny_toml):
    # The tiny config without its architecture overrides, so the size rule decides the shape.
    text = tiny_toml()
    overrides = "d_model = 16\nn_heads = 2\nn_layers = 1\nd_ff = 32\n"
    assert overrides in text
    config = tmp_path / "sized.toml"
    config.write_text(text.replace(overrides, ""))
    result = cli("train", "--config", str(config), "--budget", "300K", "--dry-run")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("model"))
    params = int(line.split(": ")[1].split(" parameters")[0].replace(",", ""))
    assert abs(params - 300_000) <= 0.10 * 300_000
    assert "(3 layers, d_model 96, 6 heads, d_ff " in line
    assert not cli.runs_dir.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "7x"], "unknown model budget '7x'; give a preset (2m, 20m, 200m) or a size"),
        (["--budget", "5k"], "'5k' is outside the sizes fintrain builds: give 10k to 200m"),
        (["--tier", "z9"], "unknown tier 'z9'; known tiers: a20"),
        (["--task", "vibes"], "target.task"),
        (["--batch-size", "huge"], "--batch-size"),
        (["--budget", "2 m"], "unknown model budget '2 m'; give a preset (2m, 20m, 200m) or a size as a number "
                              "with k or m, such as 300k or 5m; did you mean 2m?"),
        (["--budget", "300"], "did you mean 300k?"),
        (["--budget", "2n"], "did you mean 2m?"),
        (["--batch-size", "0"], "error: invalid configuration: train.batch_size: must be a positive integer or "
                                "'auto' (got 0)\n"),
    ],
)
def test_bad_names_exit_2_before_any_work(cli, tiny_config, args, message):
    result = cli("train", "--config", str(tiny_config), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not cli.data_dir.exists() and not cli.runs_dir.exists()


@pytest.mark.parametrize("device", ["mps", "cuda"])
def test_an_unavailable_device_is_bad_usage_before_any_work(cli, tiny_config, device):
    if {"mps": torch.backends.mps.is_available, "cuda": torch.cuda.is_available}[device]():
        pytest.skip(f"this machine has {device}")
    result = cli("train", "--config", str(tiny_config), "--device", device)
    assert result.exit_code == 2  # bad usage, as the README's exit codes say
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --device {device} is not available: "), line
    assert not cli.runs_dir.exists()


def test_existing_run_name_refused_and_resume_options_checked(cli, tiny_config):
    assert cli("train", "--config", str(tiny_config), "--run-name", "x", "--max-steps", "2").exit_code == 0
    again = cli("train", "--config", str(tiny_config), "--run-name", "x")
    assert again.exit_code == 2 and "exists" in again.stderr
    bad = cli("train", "--resume", str(cli.runs_dir / "x"), "--lr", "0.1")
    assert bad.exit_code == 2 and "--lr cannot be used with --resume" in bad.stderr
    done = cli("train", "--resume", str(cli.runs_dir / "x"))
    assert done.exit_code == 0 and "already finished" in done.stderr
    by_name = cli("train", "--resume", "x")  # a run's name, as `runs list` shows it
    assert by_name.exit_code == 0 and "already finished" in by_name.stderr


def _run_lib_config(tiny_config: Path, **train):
    cfg = load_config(tiny_config, {"train": train}, environ={})
    return cfg


@pytest.mark.slow
def test_crash_between_checkpoints_then_resume_is_bitwise_identical(tmp_path, tiny_config, reference, at_train_record):
    data, runs = tmp_path / "data", tmp_path / "runs"
    cfg = _run_lib_config(tiny_config, checkpoint_every=7)

    def crash(step):
        if step == 15:  # a train record after the checkpoint at step 14, before the one at 21
            raise RuntimeError("simulated kill")

    with pytest.raises(RuntimeError, match="simulated kill"):
        run_lib.start_run(cfg, data, runs, run_name="crashed",
                          options=run_lib.RunOptions(live=False, sinks=(at_train_record(crash),)))
    assert load_checkpoint(runs / "crashed" / "checkpoints" / "last.pt")["step"] == 14
    assert not (runs / "crashed" / "running.json").exists()  # an error releases the run folder too
    outcome = run_lib.resume_run(runs / "crashed", data, options=QUIET)
    assert outcome.summary["steps"] > 15
    assert _same(reference, _weights(runs / "crashed"))


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_130_then_resumes_identically(tmp_path, tiny_config, reference, at_train_record):
    data, runs = tmp_path / "data", tmp_path / "runs"
    cfg = _run_lib_config(tiny_config)

    def interrupt(step):
        if step == 10:
            signal.raise_signal(signal.SIGINT)

    from fintrain.train.loop import TrainingStopped

    with pytest.raises(TrainingStopped) as stop:
        run_lib.start_run(cfg, data, runs, run_name="int",
                          options=run_lib.RunOptions(live=False, sinks=(at_train_record(interrupt),)))
    assert stop.value.exit_code == 130
    assert load_checkpoint(runs / "int" / "checkpoints" / "last.pt")["step"] == 10
    assert not (runs / "int" / "running.json").exists()
    events = [json.loads(x).get("event") for x in (runs / "int" / "metrics.jsonl").read_text().splitlines()]
    assert "interrupted" in events
    run_lib.resume_run(runs / "int", data, options=QUIET)
    lines = [json.loads(x) for x in (runs / "int" / "metrics.jsonl").read_text().splitlines()]
    (resumed,) = [r for r in lines if r.get("event") == "resumed"]
    trained_at_10 = [r["epoch"] for r in lines if r["kind"] == "train" and r["step"] == 10]
    assert resumed["message"].endswith(f"(epoch {resumed['epoch']})") and [resumed["epoch"]] == trained_at_10
    assert _same(reference, _weights(runs / "int"))


def test_resume_after_a_reimport_trains_on_the_version_it_started_with(cli, tiny_config):
    assert cli("train", "--config", str(tiny_config), "--run-name", "r", "--max-steps", "4").exit_code == 0
    started = json.loads((cli.runs_dir / "r" / "data.json").read_text())
    # The ticker is re-imported (a shorter history): its current version has another md5.
    assert cli("data", "fetch", "MSFT", "--source", "sample", "--end", "2012-06-30").exit_code == 0
    result = cli("train", "--resume", str(cli.runs_dir / "r"), "--max-steps", "8")
    assert result.exit_code == 0, result.output
    summary = json.loads((cli.runs_dir / "r" / "summary.json").read_text())
    assert summary["steps"] == 8
    assert summary["data_md5"] == {"raw": started["raw"]["MSFT"], "features": started["features"]["MSFT"]}
    versions = json.loads(cli("data", "versions", "MSFT", "--json").stdout)
    assert [v["runs"] for v in versions if v["md5"] == started["raw"]["MSFT"]] == [["r"]]


def test_resume_refuses_only_when_its_version_is_gone_naming_the_md5(cli, tiny_config):
    assert cli("train", "--config", str(tiny_config), "--run-name", "r", "--max-steps", "4").exit_code == 0
    raw_md5 = json.loads((cli.runs_dir / "r" / "data.json").read_text())["raw"]["MSFT"]
    assert cli("data", "fetch", "MSFT", "--source", "sample", "--end", "2012-06-30").exit_code == 0
    # Gone: the run folder is moved away, so prune does not see that it uses the version.
    (cli.runs_dir / "r").rename(cli.root / "r")
    assert cli("data", "prune", "--keep", "1").exit_code == 0
    result = cli("train", "--resume", str(cli.root / "r"), "--max-steps", "8")
    assert result.exit_code == 1
    assert f"raw md5 {raw_md5}" in result.stderr and "is gone" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_resume_with_a_corrupt_last_pt_offers_last_prev(cli, tiny_config):
    assert cli("train", "--config", str(tiny_config), "--run-name", "r", "--max-steps", "6",
               "--checkpoint-every", "2").exit_code == 0
    checkpoints = cli.runs_dir / "r" / "checkpoints"
    previous_step = load_checkpoint(checkpoints / "last.prev.pt")["step"]
    data = (checkpoints / "last.pt").read_bytes()
    (checkpoints / "last.pt").write_bytes(data[: len(data) // 2])  # torn by a disk error, say
    result = cli("train", "--resume", str(cli.runs_dir / "r"), "--max-steps", "10")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output and "weights_only" not in result.stderr
    assert str(checkpoints / "last.pt") in lines[0]
    assert f"last.prev.pt (step {previous_step}) is intact" in lines[0]
    (checkpoints / "last.prev.pt").replace(checkpoints / "last.pt")
    again = cli("train", "--resume", str(cli.runs_dir / "r"), "--max-steps", "10")
    assert again.exit_code == 0, again.output


@pytest.mark.slow
def test_a_finished_run_resumed_with_more_epochs_trains_them(cli, tiny_config):
    first = cli("train", "--config", str(tiny_config), "--run-name", "r", "--epochs", "1", "--json")
    assert first.exit_code == 0, first.output
    steps = json.loads(first.stdout)["steps"]
    again = cli("train", "--resume", str(cli.runs_dir / "r"), "--epochs", "2", "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["steps"] == 2 * steps and summary["stop_reason"] == "epochs=2"


@pytest.mark.slow
def test_epochs_are_numbered_from_1_in_every_output(cli, tiny_config):
    first = cli("train", "--config", str(tiny_config), "--run-name", "n", "--epochs", "2", "--no-live")
    assert first.exit_code == 0, first.output
    run = cli.runs_dir / "n"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[0] == {"kind": "format", "step": 0, "version": 2, "epochs": "numbered from 1"}
    ends = {r["step"]: r["epoch"] for r in lines if r["kind"] == "epoch"}
    assert list(ends.values()) == [1, 2]
    end_of_1 = min(ends)
    assert {r["epoch"] for r in lines if r["kind"] == "train" and r["step"] <= end_of_1} == {1}
    assert {r["epoch"] for r in lines if r["kind"] == "train" and r["step"] > end_of_1} == {2}
    # The checkpoint and best at an epoch's end carry that epoch.
    assert all(r["epoch"] == ends[r["step"]] for r in lines if r["kind"] == "event" and r["step"] in ends)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["format_version"] == 2 and summary["epochs_completed"] == 2
    best = summary["best_epoch"]
    assert best in (1, 2) and lines[-1]["kind"] == "final" and lines[-1]["best_epoch"] == best
    assert [r for r in lines if r["kind"] == "epoch"][-1]["best_epoch"] == best
    assert "epoch 1/2" in first.stderr and "epoch 2/2" in first.stderr
    assert f"best epoch {best};" in first.stderr and f"best epoch {best}," in first.stdout
    load = json.loads(cli("runs", "show", "n", "--json").stdout)
    assert load["summary"]["best_epoch"] == best
    assert [e["epoch"] for e in load["events"] if e["step"] in ends] == [ends[e["step"]] for e in load["events"]
                                                                          if e["step"] in ends]
    # Resumed at the end of epoch 2 with a third epoch: it continues in epoch 3, in its field and its text.
    again = cli("train", "--resume", str(run), "--epochs", "3", "--no-live")
    assert again.exit_code == 0, again.output
    resumed = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"resumed"' in x]
    assert [(r["epoch"], r["message"]) for r in resumed] == [(3, f"resumed at step {max(ends)} (epoch 3)")]
    assert "epoch 3/3" in again.stderr


def _checkpointed_past(metrics: Path, step: int) -> bool:
    for line in metrics.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        if record.get("event") == "checkpoint" and record["step"] >= step:
            return True
    return False


@pytest.mark.slow
def test_kill_9_then_resume_is_bitwise_identical(tmp_path, tiny_config, reference):
    """A real process killed with SIGKILL mid-run resumes to the same final weights."""
    env = {**os.environ, "FINTRAIN_DATA_DIR": str(tmp_path / "data"), "FINTRAIN_RUNS_DIR": str(tmp_path / "runs")}
    base = [sys.executable, "-m", "fintrain", "train", "--config", str(tiny_config), "--no-live",
            "--checkpoint-every", "4"]
    proc = subprocess.Popen([*base, "--run-name", "killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "runs" / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and _checkpointed_past(metrics, 6):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "runs" / "killed" / "summary.json").exists(), "the run finished before the kill"
    subprocess.run([sys.executable, "-m", "fintrain", "train", "--resume", str(tmp_path / "runs" / "killed"), "--no-live"],
                   env=env, check=True, capture_output=True, timeout=300)
    assert _same(reference, _weights(tmp_path / "runs" / "killed"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (cuda)")
def test_short_run_on_cuda(cli, tiny_config):
    result = cli("train", "--config", str(tiny_config), "--device", "cuda", "--max-steps", "5", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["device"].startswith("cuda")


@pytest.mark.skipif(
    not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    reason="needs Apple-silicon MPS",
)
def test_short_run_on_mps(cli, tiny_config):
    result = cli("train", "--config", str(tiny_config), "--device", "mps", "--max-steps", "5", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["device"] == "mps"



EXAMPLE_TRACES = Path(__file__).resolve().parents[2] / "examples" / "thermal"


class SteppedMonitor:
    """The real replay sensor, policy and monitor, sampled synchronously on a fake clock.

    Each ``status()`` (once per training step, or per poll while paused) moves the clock
    ``seconds_per_call`` forward and samples, so when the pause comes does not depend on how
    fast this machine trains.
    """

    def __init__(self, cfg, trace: Path, seconds_per_call: float):
        from fintrain.thermal import ThermalMonitor, open_sensor

        self.now = 0.0
        sensor = open_sensor(f"replay:{trace}", clock=lambda: self.now)
        self.monitor = ThermalMonitor(cfg.thermal, sensor, clock=lambda: self.now)
        self.seconds_per_call = seconds_per_call

    def status(self):
        self.now += self.seconds_per_call
        return self.monitor.sample_once()

    def stop(self):
        self.monitor.close_sensor()


def _events(run_dir: Path) -> list[str]:
    return [json.loads(x).get("event") for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_thermal_pause_and_resume_leave_weights_unchanged(tmp_path, tiny_config, reference):
    cfg = _run_lib_config(tiny_config)
    # 9 trace seconds per step: the 92 C plateau (warning band from ~104 s, paused after the
    # 30 s dwell) arrives around step 15 of 18, and the pause lasts until the trace cools.
    monitor = SteppedMonitor(cfg, EXAMPLE_TRACES / "rise_to_92.csv", 9.0)
    outcome = run_lib.start_run(cfg, tmp_path / "data", tmp_path / "runs", run_name="hot",
                                options=run_lib.RunOptions(live=False, monitor=monitor))
    monitor.stop()
    names = _events(outcome.run_dir)
    assert names.count("thermal_pause") == 1 and names.count("thermal_resume") == 1
    assert names.index("thermal_pause") < names.index("thermal_resume")
    assert outcome.summary["temp_max_c"] >= 85 and outcome.summary["paused_total_s"] > 0
    assert _same(reference, _weights(outcome.run_dir))


@pytest.mark.slow
def test_thermal_critical_exits_3_with_a_checkpoint_that_resumes(tmp_path, tiny_config, reference):
    from fintrain.train.loop import TrainingStopped

    cfg = _run_lib_config(tiny_config)
    monitor = SteppedMonitor(cfg, EXAMPLE_TRACES / "critical_97.csv", 9.0)
    with pytest.raises(TrainingStopped) as stop:
        run_lib.start_run(cfg, tmp_path / "data", tmp_path / "runs", run_name="crit",
                          options=run_lib.RunOptions(live=False, monitor=monitor))
    monitor.stop()
    assert stop.value.exit_code == 3
    run = tmp_path / "runs" / "crit"
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "summary.json").exists()
    assert "thermal_stop" in _events(run)
    run_lib.resume_run(run, tmp_path / "data", {"thermal.source": "none"}, options=QUIET)
    assert _same(reference, _weights(run))


def test_thermal_stop_through_the_cli_exits_3(cli, tiny_config):
    """The real command with a replay: a trace that starts critical stops before any step."""
    trace = cli.root / "hot.csv"
    trace.write_text("t_s,temp_c,pressure\n" + "".join(f"{t},99,\n" for t in range(0, 60, 1)))
    result = cli("train", "--config", str(tiny_config), "--run-name", "c", "--thermal-source",
                 f"replay:{trace}?speed=50",
                 env={"FINTRAIN_THERMAL__INTERVAL_S": "0.02", "FINTRAIN_THERMAL__CRITICAL_DWELL_S": "0"})
    assert result.exit_code == 3, result.output
    assert "thermal critical" in result.stderr and "resume with: fintrain train --resume" in result.stderr
    assert not (cli.runs_dir / "c" / "running.json").exists()


@pytest.mark.slow
def test_four_sample_tickers_pool_and_report_per_ticker(cli, tiny_config, tmp_path):
    universe = tmp_path / "universe.txt"
    universe.write_text("AAPL\nIBM  # a comment\n\nMSFT\nGOOG\n")
    result = cli("train", "--config", str(tiny_config), "--universe", str(universe), "--max-steps", "4",
                 "--run-name", "multi", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tickers"] == ["AAPL", "IBM", "MSFT", "GOOG"]
    assert set(summary["per_ticker"]) == {"AAPL", "IBM", "MSFT", "GOOG"}
    assert sum(m["windows"] for m in summary["per_ticker"].values()) == summary["windows"]["test"]
    assert set(summary["data_md5"]["features"]) == {"AAPL", "IBM", "MSFT", "GOOG"}
    both = cli("train", "--config", str(tiny_config), "--universe", str(universe), "--ticker", "SPY")
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.slow
def test_running_json_names_the_training_process_and_goes_when_it_ends(tmp_path, tiny_config, at_train_record):
    from fintrain.experiments.runs import read_run

    run = tmp_path / "runs" / "m"
    seen = []

    def look(step):
        seen.append((json.loads((run / "running.json").read_text()), read_run(run).status))

    run_lib.start_run(_run_lib_config(tiny_config, max_steps=3), tmp_path / "data", tmp_path / "runs",
                      run_name="m", options=run_lib.RunOptions(live=False, sinks=(at_train_record(look),)))
    marker, status = seen[0]
    assert marker["pid"] == os.getpid() and marker["hostname"] == socket.gethostname() and marker["argv"] == sys.argv
    started = dt.datetime.fromisoformat(marker["started_at"])
    assert started.utcoffset() == dt.timedelta(0) and abs(time.time() - started.timestamp()) < 600
    assert status == "running"
    assert not (run / "running.json").exists() and read_run(run).status == "finished"


@pytest.mark.slow
def test_resume_refused_while_another_process_holds_the_run(cli, tmp_path, tiny_config, folder_snapshot, caplog,
                                                            at_train_record):
    """A live marker of another process: exit 1, one line, nothing touched. Once that process is
    gone its marker is stale, and a resume replaces it and trains."""
    cfg = _run_lib_config(tiny_config, checkpoint_every=2, max_steps=6, log_every=3)

    def crash(step):
        raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        run_lib.start_run(cfg, cli.data_dir, cli.runs_dir, run_name="busy",
                          options=run_lib.RunOptions(live=False, sinks=(at_train_record(crash),)))
    run = cli.runs_dir / "busy"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (run / "running.json").write_text(json.dumps(
            {"pid": other.pid, "hostname": socket.gethostname(), "started_at": utc_now(), "argv": ["fintrain", "train"]}))
        before = folder_snapshot(run)
        result = cli("train", "--resume", str(run), "--max-steps", "8")
        assert result.exit_code == 1
        assert f"pid {other.pid} on host {socket.gethostname()}" in result.stderr
        assert "wait for it to finish or stop it" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert folder_snapshot(run) == before
    finally:
        other.kill()
        other.wait()
    # The same marker now names a reaped process.
    pids = []
    with caplog.at_level(logging.INFO, logger="fintrain.train.marker"):
        look = at_train_record(lambda step: pids.append(json.loads((run / "running.json").read_text())["pid"]))
        outcome = run_lib.resume_run(run, cli.data_dir, options=run_lib.RunOptions(live=False, sinks=(look,)))
    assert f"replacing the stale marker of pid {other.pid}" in caplog.text
    assert set(pids) == {os.getpid()} and outcome.summary["steps"] == 6
    assert not (run / "running.json").exists()


def test_two_runs_given_one_name_at_once_the_later_is_refused(tmp_path, tiny_config, monkeypatch):
    """The other process creates the folder while this one prepares its data."""
    real_plan = run_lib.plan_run

    def plan_while_another_starts(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        (tmp_path / "runs" / "same").mkdir(parents=True)
        return plan

    monkeypatch.setattr(run_lib, "plan_run", plan_while_another_starts)
    with pytest.raises(ConfigError, match="run folder .*same exists"):
        run_lib.start_run(_run_lib_config(tiny_config, max_steps=2), tmp_path / "data", tmp_path / "runs",
                          run_name="same", options=QUIET)
    assert list((tmp_path / "runs" / "same").iterdir()) == []  # the other process's folder is left alone
