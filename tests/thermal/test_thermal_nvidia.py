"""The nvidia source with NVML faked."""

from __future__ import annotations

import sys
import types

import pytest

from fintrain.errors import ThermalError
from fintrain.thermal import NoSensor, open_sensor
from fintrain.thermal.nvidia import NvidiaSensor


class NVMLError(Exception):
    pass


def fake_nvml(temps: list[int | Exception], init_error: Exception | None = None) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.calls = []

    def init():
        nvml.calls.append("init")
        if init_error:
            raise init_error

    def temperature(handle, sensor):
        assert sensor == nvml.NVML_TEMPERATURE_GPU
        value = temps[handle]
        if isinstance(value, Exception):
            raise value
        return value

    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: nvml.calls.append("shutdown")
    nvml.nvmlDeviceGetCount = lambda: len(temps)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetName = lambda h: b"NVIDIA H200" if h == 0 else "NVIDIA L4"
    nvml.nvmlDeviceGetTemperature = temperature
    return nvml


def test_hottest_gpu_decides(clock):
    nvml = fake_nvml([41, 77])
    sensor = NvidiaSensor(nvml, clock=clock)
    r = sensor.read()
    assert r.temp_c == 77.0
    assert r.sensors == {"GPU0 NVIDIA H200": 41.0, "GPU1 NVIDIA L4": 77.0}
    sensor.close()
    assert nvml.calls == ["init", "shutdown"]


def test_a_gpu_that_fails_is_left_out():
    sensor = NvidiaSensor(fake_nvml([NVMLError("GPU is lost"), 60]))
    assert sensor.read().temp_c == 60.0


def test_all_gpus_failing_is_no_reading_with_the_reason():
    sensor = NvidiaSensor(fake_nvml([NVMLError("GPU is lost")]))
    assert sensor.read() is None
    assert "GPU is lost" in sensor.problem


def test_open_sensor_uses_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([55]))
    assert open_sensor("nvidia").read().temp_c == 55.0


def test_no_driver_is_no_sensor(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], init_error=NVMLError("Driver Not Loaded")))
    sensor = open_sensor("nvidia")
    assert isinstance(sensor, NoSensor)
    assert "Driver Not Loaded" in sensor.reason


def test_missing_bindings_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with pytest.raises(ThermalError, match=r"fintrain\[nvidia\]"):
        open_sensor("nvidia")
