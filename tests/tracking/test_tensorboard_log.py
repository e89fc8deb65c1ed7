from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from fintrain.tracking import TensorBoardSink

HPARAMS = {"ticker": "SPY", "tier": "a20", "lr": 3e-4, "batch_size": 256, "compile": False}


def load(log_dir):
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def points(acc, tag):
    return [(e.step, pytest.approx(e.value, rel=1e-6)) for e in acc.Scalars(tag)]


def test_scalars_are_readable_at_their_steps(tmp_path, rec):
    log_dir = tmp_path / "tb"
    sink = TensorBoardSink(log_dir, HPARAMS)
    sink.log(rec.train(10, 0.70), 10)
    sink.log(rec.train(20, 0.65, temp_c=None), 20)  # no reading: no temperature point
    sink.log(rec.status(), 20)
    sink.log(rec.epoch(1, 20, val_loss=0.61, auc=0.57), 20)
    sink.log(rec.event("checkpoint", 20, "saved last.pt"), 20)
    sink.close()

    acc = load(log_dir)
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "lr", "throughput", "thermal/temp_c", "thermal/paused", "val/loss", "val/auc",
            "val/accuracy", "val/brier", "val/log_loss", "val/pos_rate", "best/auc",
            "train/epoch_loss"} <= tags
    assert points(acc, "train/loss") == [(10, 0.70), (20, 0.65)]
    assert points(acc, "thermal/temp_c") == [(10, 71.5)]
    assert points(acc, "val/auc") == [(20, 0.57)]
    assert points(acc, "lr") == [(10, 3e-4), (20, 3e-4)]
    assert not any(tag.startswith("best_epoch") or tag == "time_s" for tag in tags)


def test_final_writes_hparams_with_test_metrics_into_the_runs_own_file(tmp_path, rec):
    log_dir = tmp_path / "tb"
    sink = TensorBoardSink(log_dir, HPARAMS)
    sink.log(rec.train(10, 0.70), 10)
    sink.log(rec.final(), 30)
    sink.close()

    # add_hparams would have made a sub-folder that TensorBoard lists as a second run.
    assert [p for p in log_dir.iterdir() if p.is_dir()] == []
    acc = load(log_dir)
    assert points(acc, "hparam/test_auc") == [(30, 0.5612)]
    assert points(acc, "baseline/logistic/auc") == [(30, 0.5301)]

    content = acc.PluginTagToContent("hparams")
    assert set(content) == {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"}
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["ticker"].string_value == "SPY"
    assert hp["lr"].number_value == pytest.approx(3e-4)
    assert hp["batch_size"].number_value == 256
    assert hp["compile"].bool_value is False
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert metric_tags == {f"hparam/test_{k}" for k in ("auc", "accuracy", "brier", "log_loss", "pos_rate")}


def test_resume_hides_points_logged_after_the_checkpoint(tmp_path, rec):
    log_dir = tmp_path / "tb"
    crashed = TensorBoardSink(log_dir, HPARAMS)
    for step, loss in ((10, 0.7), (20, 0.6), (30, 0.5), (40, 0.4)):
        crashed.log(rec.train(step, loss), step)
    crashed.close()
    resumed = TensorBoardSink(log_dir, HPARAMS, purge_step=21)  # last checkpoint at step 20
    resumed.log(rec.train(30, 0.55), 30)
    resumed.close()
    assert points(load(log_dir), "train/loss") == [(10, 0.7), (20, 0.6), (30, 0.55)]


def test_a_thermal_pause_shows_in_the_paused_scalar_with_its_length(tmp_path, rec):
    log_dir = tmp_path / "tb"
    sink = TensorBoardSink(log_dir, HPARAMS)
    sink.log(rec.train(10, 0.7), 10)
    sink.log(rec.event("thermal_pause", 12, "paused: 91 C", temp_c=91.0), 12)
    sink.log(rec.event("thermal_resume", 12, "resumed after 40 s", paused_s=40.0, temp_c=79.0), 12)
    sink.log(rec.train(20, 0.6), 20)
    sink.close()
    acc = load(log_dir)
    assert points(acc, "thermal/paused") == [(10, 0), (12, 1), (12, 0), (20, 0)]
    assert points(acc, "thermal/pause_s") == [(12, 40.0)]
