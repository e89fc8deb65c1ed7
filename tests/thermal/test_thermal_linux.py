"""The linux source on a fake sysfs tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from fintrain.thermal import NoSensor, open_sensor, sources
from fintrain.thermal.linux import LinuxSensor


def chip(root: Path, n: int, name: str, temps: dict[str, int | str]) -> None:
    d = root / "sys" / "class" / "hwmon" / f"hwmon{n}"
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    for i, (label, value) in enumerate(temps.items(), start=1):
        (d / f"temp{i}_input").write_text(f"{value}\n")
        (d / f"temp{i}_label").write_text(label + "\n")


def zone(root: Path, n: int, kind: str, value: int) -> None:
    d = root / "sys" / "class" / "thermal" / f"thermal_zone{n}"
    d.mkdir(parents=True)
    (d / "type").write_text(kind + "\n")
    (d / "temp").write_text(f"{value}\n")


def test_coretemp_cores_decide_and_the_hottest_sensor_is_shown(tmp_path, clock):
    chip(tmp_path, 0, "coretemp", {"Package id 0": 72000, "Core 0": 60000, "Core 1": 70000})
    chip(tmp_path, 1, "nvme", {"Composite": 41850})
    chip(tmp_path, 2, "acpitz", {"temp1": 95000})
    sensor = LinuxSensor.open(tmp_path, clock=clock)
    clock.t = 12.0
    r = sensor.read()
    assert r.temp_c == pytest.approx(65.0)  # the average of the two cores
    assert (r.hottest_name, r.hottest_c) == ("acpitz temp1", 95.0)
    assert r.sensors["nvme Composite"] == pytest.approx(41.85)
    assert r.t_s == 12.0


def test_amd_ccd_sensors_decide_over_tctl(tmp_path):
    chip(tmp_path, 0, "k10temp", {"Tctl": 90000, "Tccd1": 70000, "Tccd2": 74000})
    assert LinuxSensor.open(tmp_path).read().temp_c == pytest.approx(72.0)


def test_package_sensor_alone_decides(tmp_path):
    chip(tmp_path, 0, "coretemp", {"Package id 0": 81000})
    chip(tmp_path, 1, "nvme", {"Composite": 40000})
    assert LinuxSensor.open(tmp_path).read().temp_c == pytest.approx(81.0)


def test_thermal_zones_when_there_is_no_hwmon(tmp_path):
    zone(tmp_path, 0, "acpitz", 40000)
    zone(tmp_path, 1, "x86_pkg_temp", 66000)
    r = LinuxSensor.open(tmp_path).read()
    assert r.temp_c == pytest.approx(66.0)
    assert set(r.sensors) == {"thermal_zone0 acpitz", "thermal_zone1 x86_pkg_temp"}


def test_bad_files_are_dropped_and_counted(tmp_path):
    chip(tmp_path, 0, "coretemp", {"Core 0": 60000, "Core 1": "garbage", "Core 2": -273000})
    sensor = LinuxSensor.open(tmp_path)
    r = sensor.read()
    assert r.temp_c == pytest.approx(60.0)
    assert sensor.dropped == 2


def test_no_sensor_files_is_no_sensor_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSFS_ROOT", tmp_path)
    sensor = open_sensor("linux")
    assert isinstance(sensor, NoSensor)
    assert "no temperature files" in sensor.reason
    assert sensor.read() is None


def test_open_sensor_linux_reads_the_tree(tmp_path, monkeypatch):
    chip(tmp_path, 0, "cpu_thermal", {"temp1": 55500})
    monkeypatch.setattr(sources, "SYSFS_ROOT", tmp_path)
    assert open_sensor("linux").read().temp_c == pytest.approx(55.5)
