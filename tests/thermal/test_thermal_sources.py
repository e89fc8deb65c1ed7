"""Source specs, ``none`` and ``auto``."""

from __future__ import annotations

import sys
import types

import pytest

from fintrain.config import ThermalConfig
from fintrain.errors import ThermalError
from fintrain.thermal import NoSensor, Reading, open_sensor, parse_spec, sources


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("auto", ("auto", "")), ("LINUX", ("linux", "")), ("command:macmon pipe -s 0", ("command", "macmon pipe -s 0")),
     ("replay:a:b.csv?speed=2", ("replay", "a:b.csv?speed=2"))],
)
def test_parse_spec(spec, parsed):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize(("spec", "message"), [("bogus", "unknown thermal source"), ("command:", "needs an argument"),
                                                ("linux:x", "takes no argument")])
def test_bad_specs_are_errors(spec, message):
    with pytest.raises(ThermalError, match=message):
        open_sensor(spec)


def test_none_turns_monitoring_off():
    assert open_sensor("none") is None


def test_config_rejects_unknown_sources_and_require_sensor_with_none():
    with pytest.raises(ValueError, match="must be auto, none"):
        ThermalConfig(source="thermometer")
    with pytest.raises(ValueError, match="require_sensor"):
        ThermalConfig(source="none", require_sensor=True)
    assert ThermalConfig(source="command:macmon pipe").source == "command:macmon pipe"


class Fixed:
    def __init__(self, name, temp):
        self.name, self.temp, self.closed = name, temp, False
        self.problem = None if temp is not None else "gave nothing"

    def read(self):
        return None if self.temp is None else Reading(t_s=0.0, sensors={"x": self.temp}, temp_c=self.temp)

    def close(self):
        self.closed = True


def test_auto_picks_the_first_source_with_a_reading(monkeypatch):
    opened = {}

    def factory(name, temp):
        def make(arg, field, clock):
            opened[name] = Fixed(name, temp)
            return opened[name]
        return make

    monkeypatch.setattr(sources, "AUTO_ORDER", ("macos", "linux", "command"))
    monkeypatch.setitem(sources.SENSORS, "macos", lambda a, f, c: NoSensor("macos: not a Mac"))
    monkeypatch.setitem(sources.SENSORS, "linux", factory("linux", None))
    monkeypatch.setitem(sources.SENSORS, "command", factory("command", 61.0))
    sensor = open_sensor("auto")
    assert sensor is opened["command"]
    assert opened["linux"].closed  # a source without a reading is closed, not leaked


def test_auto_without_any_sensor_says_what_it_tried(monkeypatch):
    monkeypatch.setattr(sources, "AUTO_ORDER", ("macos", "linux"))
    monkeypatch.setitem(sources.SENSORS, "macos", lambda a, f, c: NoSensor("macos: not a Mac"))
    monkeypatch.setitem(sources.SENSORS, "linux", lambda a, f, c: NoSensor("linux: no files"))
    sensor = open_sensor("auto")
    assert isinstance(sensor, NoSensor)
    assert sensor.read() is None
    assert "no temperature sensor available" in sensor.reason
    assert "not a Mac" in sensor.reason and "no files" in sensor.reason


@pytest.mark.parametrize(
    ("without", "picked"),
    [((), "macos"), (("macos",), "nvidia"), (("macos", "nvidia"), "linux")],
)
def test_auto_prefers_the_mac_then_the_gpu_then_the_linux_cpu(monkeypatch, without, picked):
    """The real order: on a box with a GPU the training runs there, so NVIDIA wins over hwmon."""
    monkeypatch.setitem(sys.modules, "pynvml", types.ModuleType("pynvml"))  # auto asks for it first
    for name in ("macos", "nvidia", "linux"):
        if name in without:
            monkeypatch.setitem(sources.SENSORS, name, lambda a, f, c, name=name: NoSensor(f"{name}: none here"))
        else:
            monkeypatch.setitem(sources.SENSORS, name, lambda a, f, c, name=name: Fixed(name, 50.0))
    assert open_sensor("auto").name == picked
