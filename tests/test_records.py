"""Typed records: the metrics.jsonl objects they give, and reading them back."""

from __future__ import annotations

import pytest

from fintrain.records import (
    EpochRecord,
    Event,
    EventRecord,
    FinalRecord,
    StatusRecord,
    TrainRecord,
    record_from_json,
)

# Lines as metrics.jsonl has always held them (before the typed records), less the "step" that
# the file sink puts second.
TRAIN = {"kind": "train", "epoch": 0, "step": 3, "train/loss": 0.71, "lr": 2.9e-4, "throughput": 92.0,
         "thermal/temp_c": None, "thermal/paused": 0, "time_s": 2.1}
EPOCH = {"kind": "epoch", "epoch": 1, "step": 18, "train/loss": 0.69, "val/loss": 0.70, "val/auc": 0.52,
         "val/accuracy": 0.5, "best/auc": 0.52, "best_epoch": 1, "time_s": 9.0}
EVENT = {"kind": "event", "event": "thermal_resume", "epoch": 1, "step": 12, "message": "resumed after 40 s at 79 C",
         "paused_s": 40.0, "temp_c": 79.0}
FINAL = {"kind": "final", "test": {"auc": 0.55}, "baselines": {"base_rate": {"auc": 0.5}}, "best_epoch": 1, "steps": 18}


@pytest.mark.parametrize("line", [TRAIN, EPOCH, EVENT, FINAL], ids=lambda line: line["kind"])
def test_a_line_reads_back_to_a_record_that_writes_the_same_line(line):
    record = record_from_json(line)
    assert record is not None and record.kind == line["kind"]
    assert record.to_json() == line and list(record.to_json()) == list(line)  # keys and their order


def test_records_carry_typed_fields():
    train = record_from_json(TRAIN)
    assert isinstance(train, TrainRecord) and train.loss == 0.71 and train.temp_c is None
    epoch = record_from_json(EPOCH)
    assert isinstance(epoch, EpochRecord) and epoch.val["loss"] == 0.70 and (epoch.best_metric, epoch.best_value) == ("auc", 0.52)
    event = record_from_json(EVENT)
    assert isinstance(event, EventRecord) and event.event is Event.THERMAL_RESUME and event.extra["paused_s"] == 40.0
    assert isinstance(record_from_json(FINAL), FinalRecord)


def test_unknown_or_damaged_lines_give_none():
    assert record_from_json({"kind": "future"}) is None
    assert record_from_json({"kind": "event", "event": "no_such_event", "step": 1}) is None
    assert record_from_json({"kind": "train", "step": 1}) is None  # no epoch


def test_a_status_without_a_monitor_says_off_and_nothing_else_thermal():
    off = StatusRecord.of("running", 0.0, None, 1024, time_s=1.5).to_json()
    assert off == {"kind": "status", "state": "running", "paused_s": 0.0, "time_s": 1.5, "thermal/temp_c": None,
                   "thermal/band": "off", "memory_bytes": 1024}
    paused = StatusRecord("paused", 3.0, None, temp_c=91.0, temp_max_c=92.0, hottest_c=95.0, band="warning",
                          trend="falling").to_json()
    assert "time_s" not in paused and paused["thermal/trend"] == "falling" and paused["thermal/hottest_c"] == 95.0
