from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import torch

from fintrain.tracking import JsonlSink


def lines(path):
    """The records of a metrics.jsonl, after its format line (checked)."""
    first, *rest = [json.loads(line) for line in path.read_text().splitlines()]
    assert first == {"kind": "format", "step": 0, "version": 2, "epochs": "numbered from 1"}
    return rest


def test_train_epoch_event_and_final_records_are_one_line_each(tmp_path, rec):
    path = tmp_path / "run" / "metrics.jsonl"
    sink = JsonlSink(path)
    sink.log(rec.train(10, 0.7), 10)
    sink.log(rec.status(), 10)  # the panel's heartbeat is not part of the record
    sink.log(rec.epoch(1, 10), 10)
    sink.log(rec.event("checkpoint", 10, "saved last.pt", path="checkpoints/last.pt"), 10)
    sink.log(rec.final(), 30)
    # Flushed line by line: readable before close, as after a kill -9.
    written = lines(path)
    sink.close()
    assert [r["kind"] for r in written] == ["train", "epoch", "event", "final"]
    assert written[0]["train/loss"] == 0.7 and written[0]["thermal/temp_c"] == 71.5
    assert written[2]["event"] == "checkpoint" and written[2]["path"] == "checkpoints/last.pt"
    assert written[3]["step"] == 30 and written[3]["test"]["auc"] == 0.5612
    assert written[3]["baselines"]["logistic"]["auc"] == 0.5301


def test_non_finite_values_become_null_and_tensors_plain_numbers(tmp_path, rec):
    path = tmp_path / "metrics.jsonl"
    odd = replace(rec.train(20, math.nan), lr=np.float32(1e-4), throughput=torch.tensor(12.5), temp_c=math.inf)
    sink = JsonlSink(path)
    sink.log(odd, 20)
    sink.close()
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    (record,) = lines(path)
    assert record["train/loss"] is None and record["thermal/temp_c"] is None
    assert record["throughput"] == 12.5 and abs(record["lr"] - 1e-4) < 1e-9


def test_reopening_appends(tmp_path, rec):
    path = tmp_path / "metrics.jsonl"
    first = JsonlSink(path)
    first.log(rec.train(10, 0.7), 10)
    first.close()
    second = JsonlSink(path)
    second.log(rec.train(20, 0.6), 20)
    second.close()
    assert [r["step"] for r in lines(path)] == [10, 20]


def test_resume_drops_the_lines_after_the_checkpoint_and_a_torn_line(tmp_path, rec):
    path = tmp_path / "metrics.jsonl"
    crashed = JsonlSink(path)
    for step in (10, 20, 30, 40):
        crashed.log(rec.train(step, 0.7), step)
    crashed.log(rec.event("checkpoint", 20, "saved last.pt"), 20)
    crashed.close()
    with open(path, "a") as fh:  # kill -9 in the middle of a write
        fh.write('{"kind": "train", "step": 5')
    resumed = JsonlSink(path, resume_step=20)
    resumed.log(rec.event("resumed", 20, "resumed at step 20"), 20)
    resumed.log(rec.train(30, 0.65), 30)
    resumed.close()
    records = lines(path)  # every line parses
    assert [(r["kind"], r["step"]) for r in records] == [
        ("train", 10), ("train", 20), ("event", 20), ("event", 20), ("train", 30),
    ]
    assert records[-1]["train/loss"] == 0.65


def test_log_after_close_is_ignored(tmp_path, rec):
    path = tmp_path / "metrics.jsonl"
    sink = JsonlSink(path)
    sink.close()
    sink.log(rec.train(10, 0.7), 10)
    assert lines(path) == []


def test_resuming_a_file_of_the_earlier_format_converts_it_first(tmp_path, rec):
    """Format 1 (no marker) held 0-based epochs; a resumed run appends numbered ones to a converted file."""
    path = tmp_path / "metrics.jsonl"
    old = [
        {"kind": "train", "step": 5, "epoch": 0, "train/loss": 0.7},
        {"kind": "epoch", "step": 10, "epoch": 0, "val/loss": 0.6, "best/auc": 0.55, "best_epoch": 0},
        {"kind": "event", "step": 10, "event": "checkpoint", "epoch": 1, "message": "saved last.pt (end of epoch)"},
        {"kind": "event", "step": 14, "event": "interrupted", "epoch": 1, "message": "interrupted at step 14"},
    ]
    path.write_text("".join(json.dumps(d) + "\n" for d in old))
    sink = JsonlSink(path, resume_step=10)
    sink.log(rec.event("resumed", 10, "resumed at step 10 (epoch 2)", epoch=2), 10)
    sink.close()
    records = lines(path)
    assert [(r["kind"], r["step"], r["epoch"]) for r in records] == [
        ("train", 5, 1), ("epoch", 10, 1), ("event", 10, 1), ("event", 10, 2),
    ]
    assert records[1]["best_epoch"] == 1 and records[3]["event"] == "resumed"
