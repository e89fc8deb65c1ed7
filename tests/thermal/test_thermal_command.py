"""The command: source with real subprocesses."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest

from fintrain.errors import ThermalError
from fintrain.thermal import open_sensor
from fintrain.thermal.command import CommandSensor, parse_line

PY = shlex.quote(sys.executable)


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("55.5\n", None, 55.5),
        ("Package id 0:  +45.0°C  (high = +80.0°C)", None, 45.0),
        ('{"temp": {"cpu_temp_avg": 61.2, "gpu_temp_avg": 50.1}}', None, 61.2),
        ('{"temp": {"cpu_temp_avg": 61.2, "gpu_temp_avg": 50.1}}', "temp.gpu_temp_avg", 50.1),
        ('{"gpus": [{"t": 71}]}', "gpus.0.t", 71.0),
        ('{"temp": {"cpu_temp_avg": 61.2}}', "temp.missing", None),
        ("no number here", None, None),
        ("", None, None),
    ],
)
def test_parse_line(line, field, value):
    assert parse_line(line, field) == value


def test_one_shot_command_is_run_at_every_read(tmp_path: Path):
    counter = tmp_path / "n"
    script = tmp_path / "once.py"
    script.write_text(
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "print(50 + n)\n"
    )
    sensor = open_sensor(f"command:{PY} {shlex.quote(str(script))}")
    try:
        temps = [sensor.read().temp_c for _ in range(3)]
    finally:
        sensor.close()
    assert temps == [51.0, 52.0, 53.0]


def test_streaming_command_is_started_once_and_read_line_by_line(tmp_path: Path):
    script = tmp_path / "stream.py"
    script.write_text(
        "import json, sys, time\n"
        "for i in range(200):\n"
        "    print(json.dumps({'temp': {'cpu_temp_avg': 60 + i, 'gpu_temp_avg': 40}}), flush=True)\n"
        "    time.sleep(0.05)\n"
    )
    sensor = CommandSensor(f"{PY} {shlex.quote(str(script))}", json_field="temp.cpu_temp_avg")
    try:
        first = sensor.read()
        proc = sensor._proc
        time.sleep(0.3)
        later = sensor.read()
        assert sensor._proc is proc  # still the same process
    finally:
        sensor.close()
    assert first.temp_c >= 60
    assert later.temp_c > first.temp_c
    assert proc.poll() is not None  # close() ended it


def test_command_that_prints_nothing_useful_gives_no_reading_and_says_why():
    sensor = open_sensor(f"command:{PY} -c \"print('hello'); import sys; sys.exit(3)\"")
    try:
        assert sensor.read() is None
    finally:
        sensor.close()
    assert "printed no temperature" in sensor.problem
    assert "exit code 3" in sensor.problem


def test_json_without_the_field_hints_at_json_field():
    sensor = open_sensor(f"command:{PY} -c \"print('{{\\\"x\\\": 1}}')\"")
    try:
        assert sensor.read() is None
    finally:
        sensor.close()
    assert "--json-field" in sensor.problem


def test_out_of_range_values_from_a_command_are_dropped():
    sensor = open_sensor(f"command:{PY} -c \"print(45000)\"")  # millidegrees, not C
    try:
        r = sensor.read()
    finally:
        sensor.close()
    assert r.temp_c is None and sensor.dropped == 1


def test_missing_executable_is_an_error():
    with pytest.raises(ThermalError, match="not an executable"):
        open_sensor("command:no-such-thermal-tool --json")
