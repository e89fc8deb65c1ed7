from __future__ import annotations

import io
import json
from dataclasses import replace

from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fintrain.tracking import (
    JsonlSink,
    LivePanel,
    PlainLog,
    TensorBoardSink,
    make_sinks,
)


def kinds(sink):
    return [type(s) for s in sink.sinks]


def test_not_a_terminal_gives_plain_lines_and_both_files(info, rec):
    stream = io.StringIO()
    console = Console(file=stream, width=100)  # a pipe, not a terminal
    sink = make_sinks(info, info.run_dir, {"lr": 3e-4}, live=True, console=console)
    assert kinds(sink) == [JsonlSink, TensorBoardSink, PlainLog]
    sink.log(rec.train(10, 0.7), 10)
    sink.log(rec.epoch(1, 10), 10)
    sink.log(rec.final(), 30)
    sink.close()
    assert "\x1b" not in stream.getvalue() and "epoch 1/3" in stream.getvalue()
    lines = (info.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["format", "train", "epoch", "final"]
    acc = EventAccumulator(str(info.run_dir / "tb"))
    acc.Reload()
    assert "hparam/test_auc" in acc.Tags()["scalars"]


def test_a_terminal_gets_the_live_panel_unless_no_live(info, rec):
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    sink = make_sinks(info, info.run_dir, {}, live=True, console=terminal)
    try:
        assert kinds(sink) == [JsonlSink, TensorBoardSink, LivePanel]
        sink.log(rec.train(10, 0.7), 10)
    finally:
        sink.close()
    assert "fintrain train · 20261128-a20-2m" in terminal.file.getvalue()

    sink = make_sinks(info, info.run_dir, {}, live=False, console=terminal)
    sink.close()
    assert kinds(sink)[-1] is PlainLog


def test_resume_continues_the_files_without_the_repeated_steps(info, rec):
    quiet = Console(file=io.StringIO())
    first = make_sinks(info, info.run_dir, {}, live=False, console=quiet)
    for step in (10, 20, 30):
        first.log(rec.train(step, 0.7), step)
    first.close()  # checkpoint at step 20; the run died after logging step 30
    resumed = make_sinks(replace(info, start_step=20), info.run_dir, {}, live=False, console=quiet)
    resumed.log(rec.train(30, 0.5), 30)
    resumed.close()
    lines = [json.loads(line) for line in (info.run_dir / "metrics.jsonl").read_text().splitlines()][1:]  # after the format line
    assert [(r["step"], r["train/loss"]) for r in lines] == [(10, 0.7), (20, 0.7), (30, 0.5)]
    acc = EventAccumulator(str(info.run_dir / "tb"))
    acc.Reload()
    assert [(e.step, round(e.value, 3)) for e in acc.Scalars("train/loss")] == [(10, 0.7), (20, 0.7), (30, 0.5)]
