from __future__ import annotations

import io
from typing import Any

import pytest

from fintrain.tracking import (
    JsonlSink,
    LivePanel,
    MetricSink,
    MultiSink,
    NullSink,
    PlainLog,
    TensorBoardSink,
)


class Recorder:
    def __init__(self, fail_log: bool = False, fail_close: bool = False):
        self.records: list[tuple[Any, int]] = []
        self.closed = 0
        self.fail_log = fail_log
        self.fail_close = fail_close

    def log(self, record, step):
        self.records.append((record, step))
        if self.fail_log:
            raise OSError("disk full")

    def close(self):
        self.closed += 1
        if self.fail_close:
            raise OSError(f"cannot close {id(self)}")


def test_every_sink_satisfies_the_protocol(info, tmp_path):
    sinks = [
        NullSink(),
        MultiSink([]),
        JsonlSink(tmp_path / "metrics.jsonl"),
        TensorBoardSink(tmp_path / "tb", {"lr": 1e-3}),
        LivePanel(info),
        PlainLog(info, stream=io.StringIO()),
    ]
    for sink in sinks:
        assert isinstance(sink, MetricSink), type(sink).__name__
        sink.close()
    assert not isinstance(object(), MetricSink)


def test_multisink_gives_each_record_to_every_sink_in_order(rec):
    a, b = Recorder(), Recorder()
    sink = MultiSink([a, b])
    sink.log(rec.train(10, 0.7), 10)
    sink.log(rec.status(), 10)
    assert [s for _, s in a.records] == [10, 10]
    assert a.records == b.records


def test_multisink_still_feeds_the_others_when_one_fails_then_raises(rec):
    broken, healthy = Recorder(fail_log=True), Recorder()
    sink = MultiSink([broken, healthy])
    with pytest.raises(OSError, match="disk full"):
        sink.log(rec.train(10, 0.7), 10)
    assert len(healthy.records) == 1


def test_multisink_closes_every_sink_even_if_some_fail():
    first, second, third = Recorder(fail_close=True), Recorder(), Recorder(fail_close=True)
    sink = MultiSink([first, second, third])
    with pytest.raises(OSError, match=f"cannot close {id(first)}"):
        sink.close()
    assert (first.closed, second.closed, third.closed) == (1, 1, 1)
    sink.close()  # a second close (a finally after an explicit close) does nothing
    assert second.closed == 1


def test_total_steps_is_capped_by_max_steps(info):
    from dataclasses import replace

    assert info.total_steps == 30
    assert replace(info, max_steps=12).total_steps == 12
    assert replace(info, max_steps=500).total_steps == 30
