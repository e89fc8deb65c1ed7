"""The monitor: synchronous sampling, failing sensors, events, require_sensor, the thread."""

from __future__ import annotations

import logging
import time

import pytest

from fintrain.config import ThermalConfig
from fintrain.errors import ThermalError
from fintrain.thermal import NoSensor, ThermalMonitor


def test_sample_once_runs_the_policy_on_the_readings(scripted, make_reading, clock):
    readings = [make_reading(float(t), 90.0) for t in range(40)]
    monitor = ThermalMonitor(ThermalConfig(), scripted(readings), clock=clock)
    statuses = [monitor.sample_once() for _ in range(40)]
    assert statuses[0].action == "run" and statuses[0].band == "warning"
    first_pause = next(i for i, s in enumerate(statuses) if s.action == "pause")
    assert first_pause == 30
    assert statuses[-1].paused_s == pytest.approx(9.0)
    assert statuses[-1].temp_max_c == 90.0
    assert statuses[-1].samples == 40


def test_status_is_cheap_and_does_not_read(scripted, make_reading, clock):
    sensor = scripted([make_reading(0.0, 60.0)])
    monitor = ThermalMonitor(ThermalConfig(), sensor, clock=clock)
    monitor.sample_once()
    before = sensor.reads
    for _ in range(1000):
        status = monitor.status()
    assert sensor.reads == before
    assert status.temp_c == 60.0 and status.band == "normal"


def test_seq_tells_a_new_pause_from_an_old_one(scripted, make_reading, clock):
    temps = [90.0] * 3 + [70.0] * 3 + [90.0] * 3
    sensor = scripted([make_reading(float(t), v) for t, v in enumerate(temps)])
    monitor = ThermalMonitor(ThermalConfig(smoothing_s=0, dwell_s=0), sensor, clock=clock)
    seen = [(s.action, s.seq) for s in (monitor.sample_once() for _ in temps)]
    pauses = {seq for action, seq in seen if action == "pause"}
    assert len(pauses) == 2  # two distinct pauses, each with its own seq
    assert seen[-1] == ("pause", 3)
    assert monitor.status().pauses == 2


def test_failing_sensor_gives_no_reading_and_a_warning(scripted, make_reading, clock, caplog):
    sensor = scripted([OSError("SMC went away")])
    monitor = ThermalMonitor(ThermalConfig(), sensor, clock=clock)
    with caplog.at_level(logging.WARNING):
        status = monitor.sample_once()
        monitor.sample_once()
    assert status.action == "run"
    assert status.band == "no reading"
    assert status.temp_c is None
    assert "SMC went away" in status.reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no temperature reading" in warnings[0].getMessage()


def test_no_reading_during_a_pause_keeps_it_paused_until_max_pause(scripted, make_reading, clock):
    cfg = ThermalConfig(smoothing_s=0, dwell_s=0, max_pause_s=60)
    sensor = scripted([make_reading(0.0, 90.0)] + [None] * 100)
    monitor = ThermalMonitor(cfg, sensor, clock=clock)
    actions = []
    for _ in range(80):
        actions.append(monitor.sample_once().action)
        clock.advance(1.0)  # no readings: the monitor carries time forward on its clock
    assert actions[0] == "pause"
    assert "run" not in actions
    assert actions[-1] == "stop"
    assert actions.index("stop") == 60


def test_nosensor_is_shown_as_no_reading(clock):
    monitor = ThermalMonitor(ThermalConfig(), NoSensor("no sensor on this VM"), clock=clock)
    status = monitor.sample_once()
    assert (status.action, status.band) == ("run", "no reading")
    assert "no sensor on this VM" in status.reason


def test_require_sensor_refuses_to_start_without_a_reading(clock):
    monitor = ThermalMonitor(ThermalConfig(require_sensor=True), NoSensor("nothing here"), clock=clock)
    with pytest.raises(ThermalError, match="require_sensor"):
        monitor.start()


def test_require_sensor_starts_with_a_reading(scripted, make_reading):
    sensor = scripted([make_reading(0.0, 60.0)])
    with ThermalMonitor(ThermalConfig(require_sensor=True, interval_s=0.01), sensor) as monitor:
        assert monitor.status().temp_c == 60.0
    assert sensor.closed


def test_monitoring_off_always_runs():
    monitor = ThermalMonitor(ThermalConfig(), None)
    with monitor:
        status = monitor.status()
    assert status.action == "run" and "off" in status.reason


def test_background_thread_samples_until_stopped(scripted, make_reading):
    sensor = scripted([make_reading(0.0, 60.0)])
    monitor = ThermalMonitor(ThermalConfig(interval_s=0.01), sensor).start()
    deadline = time.monotonic() + 5
    while monitor.status().samples < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    monitor.stop()
    count = monitor.status().samples
    assert count >= 5
    time.sleep(0.05)
    assert monitor.status().samples == count  # stopped means stopped
    assert sensor.closed


def test_describe_for_the_panel(scripted, make_reading, clock):
    temps = [92.0] * 5 + [91.0, 90.0, 89.0]
    sensor = scripted([make_reading(float(t), v) for t, v in enumerate(temps)])
    monitor = ThermalMonitor(ThermalConfig(smoothing_s=0, dwell_s=0), sensor, clock=clock)
    for _ in temps:
        status = monitor.sample_once()
    assert status.describe() == "paused 7 s, 89 C, falling"
