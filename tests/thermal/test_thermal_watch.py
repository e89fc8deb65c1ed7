"""The thermal-watch loop and its view."""

from __future__ import annotations

from rich.console import Console

from fintrain.config import ThermalConfig
from fintrain.thermal.monitor import ThermalStatus
from fintrain.cli.thermal import render_watch
from fintrain.thermal.watch import WatchView, watch
from fintrain.display import SPARK_BLOCKS


def test_watch_samples_on_schedule_for_the_duration_and_closes(scripted, make_reading, clock):
    sensor = scripted([make_reading(float(t), 60.0 + t) for t in range(100)])
    slept = []

    def sleep(s):
        slept.append(s)
        clock.advance(s)

    statuses = list(watch(ThermalConfig(interval_s=0.5), sensor, 2.0, clock=clock, sleep=sleep))
    assert len(statuses) == 5  # 0, 0.5, 1, 1.5, 2 s
    assert slept == [0.5] * 4
    assert sensor.closed


def test_watch_closes_the_sensor_when_interrupted(scripted, make_reading, clock):
    sensor = scripted([make_reading(0.0, 60.0)])
    samples = watch(ThermalConfig(), sensor, None, clock=clock, sleep=clock.advance)
    next(samples)
    next(samples)
    samples.close()  # what Ctrl-C does to the CLI's loop
    assert sensor.closed


def render(view: WatchView) -> str:
    console = Console(width=100, record=True, force_terminal=False, color_system=None)
    console.print(render_watch(view))
    return console.export_text()


def test_view_shows_sensors_band_hottest_pressure_minmax_and_sparkline():
    view = WatchView(ThermalConfig())
    for t in range(60):
        temp = 60.0 + t / 2
        sensors = {"pACC MTR Temp Sensor1": temp, "GPU MTR Temp Sensor4": temp + 5}
        view.update(ThermalStatus(
            temp_c=temp, smoothed_c=temp, band="acceptable" if temp >= 70 else "normal", hottest_c=temp + 5,
            hottest_name="GPU MTR Temp Sensor4", pressure=1, t_s=1000.0 + t, sensors=sensors, source="macos smc",
            reason="", trend="rising",
        ))
    text = render(view)
    assert "macos smc" in text
    assert "89.5 C" in text and "acceptable" in text and "rising" in text
    assert "hottest" in text and "GPU MTR Temp Sensor4" in text
    assert "moderate" in text
    assert "60.0 C / 89.5 C" in text
    assert any(ch in text for ch in SPARK_BLOCKS[1:])
    assert "pACC MTR Temp Sensor1" in text


def test_plain_line_for_no_reading_says_why():
    view = WatchView(ThermalConfig())
    status = ThermalStatus(reason="no reading: SMC went away", t_s=5.0)
    view.update(status)
    line = view.line(status)
    assert "no reading" in line and "SMC went away" in line
    assert "no reading" in render(view)
