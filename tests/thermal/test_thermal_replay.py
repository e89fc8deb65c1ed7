"""Replaying a recorded trace: timing, interpolation, end hold, and the CSV format."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fintrain.errors import ThermalError
from fintrain.thermal import ReplaySensor, TraceWriter, open_sensor, read_trace
from fintrain.thermal.replay import parse_replay_spec


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return write(tmp_path / "trace.csv", "t_s,temp_c,pressure\n0,60,0\n10,80,1\n20,,\n30,70,2\n")


def test_plays_from_the_first_read_at_the_given_speed(trace, clock):
    sensor = ReplaySensor(read_trace(trace), speed=10, clock=clock)
    clock.t = 1000.0  # the replay starts at its first read, whatever the clock says
    first = sensor.read()
    assert (first.t_s, first.temp_c, first.pressure) == (0.0, 60.0, 0)
    clock.advance(0.5)  # 5 s of trace time
    r = sensor.read()
    assert r.t_s == pytest.approx(5.0)
    assert r.temp_c == pytest.approx(70.0)  # interpolated between 60 and 80
    assert r.pressure == 0  # pressure holds the last sample's level


def test_empty_cell_is_no_reading(trace, clock):
    sensor = ReplaySensor(read_trace(trace), clock=clock)
    sensor.read()
    clock.advance(20.0)
    r = sensor.read()
    assert r is not None and r.temp_c is None and r.t_s == pytest.approx(20.0)
    assert sensor.problem


def test_holds_the_last_value_after_the_end(trace, clock):
    sensor = ReplaySensor(read_trace(trace), speed=100, clock=clock)
    sensor.read()
    for _ in range(10):
        clock.advance(60.0)  # hours of trace time: the frozen-sensor check must not drop it
        r = sensor.read()
        assert (r.temp_c, r.pressure) == (70.0, 2)
    assert sensor.dropped == 0


def test_open_sensor_parses_the_speed(trace):
    sensor = open_sensor(f"replay:{trace}?speed=20")
    assert isinstance(sensor, ReplaySensor) and sensor.speed == 20
    assert open_sensor(f"replay:{trace}").speed == 1


@pytest.mark.parametrize(
    ("arg", "message"),
    [("x.csv?speed=0", "above 0"), ("x.csv?speed=fast", "number"), ("x.csv?rate=2", "unknown option"),
     ("?speed=2", "trace file")],
)
def test_bad_specs(arg, message):
    with pytest.raises(ThermalError, match=message):
        parse_replay_spec(arg)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("time,temp\n0,50\n", "header"),
        ("t_s,temp_c\n", "no samples"),
        ("t_s,temp_c\n0,50\n0,51\n", "line 3.*does not increase"),
        ("t_s,temp_c\n0,hot\n", "line 2.*not a number"),
        ("t_s,temp_c,pressure\n0,50,7\n", "level 0-4"),
        ("t_s,temp_c\n0,50,1\n", "columns"),
    ],
)
def test_malformed_traces_name_the_problem(tmp_path, text, message):
    with pytest.raises(ThermalError, match=message):
        read_trace(write(tmp_path / "t.csv", text))


def test_missing_trace_is_an_error(tmp_path):
    with pytest.raises(ThermalError, match="not found"):
        open_sensor(f"replay:{tmp_path / 'nope.csv'}")


def test_writer_output_replays_to_the_same_values(tmp_path):
    buf = io.StringIO()
    writer = TraceWriter(buf)
    writer.write(500.0, 61.234, None)
    writer.write(501.0, None, 1)
    writer.write(501.0, 99.0, None)  # same time: skipped, times must increase
    writer.write(502.5, 75.0, 2)
    path = write(tmp_path / "rec.csv", buf.getvalue())
    t = read_trace(path)
    assert t.t_s == (0.0, 1.0, 2.5)
    assert t.temp_c == (61.23, None, 75.0)
    assert t.pressure == (None, 1, 2)


def test_open_sensor_replays_on_an_injected_clock(trace, clock):
    sensor = open_sensor(f"replay:{trace}?speed=10", clock=clock)
    sensor.read()
    clock.advance(2.0)
    assert sensor.read().t_s == pytest.approx(20.0)
