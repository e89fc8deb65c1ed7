"""Bad values are dropped and counted; the deciding value averages the chosen sensors."""

from __future__ import annotations

import logging
import math

import pytest

from fintrain.thermal import ValueFilter, build_reading


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -5.0, 150.5, 400.0, "n/a"])
def test_bad_values_are_dropped_and_counted(bad):
    f = ValueFilter()
    r = build_reading(1.0, {"good": 60.0, "bad": bad}, f)
    assert r.sensors == {"good": 60.0}
    assert r.temp_c == 60.0
    assert f.dropped == 1
    assert len(r.dropped) == 1 and r.dropped[0].startswith("bad:")


def test_150_is_still_a_temperature():
    r = build_reading(0.0, {"hot": 150.0}, ValueFilter())
    assert r.temp_c == 150.0


def test_all_values_bad_gives_no_temperature():
    f = ValueFilter()
    r = build_reading(0.0, {"a": math.nan, "b": -1.0}, f)
    assert r.temp_c is None and not r.has_temperature
    assert f.dropped == 2


def test_a_warning_names_the_sensor_once(caplog):
    f = ValueFilter()
    with caplog.at_level(logging.WARNING):
        for t in range(5):
            build_reading(float(t), {"pACC 3": math.nan}, f)
    warnings = [r for r in caplog.records if "pACC 3" in r.getMessage()]
    assert len(warnings) == 1
    assert f.dropped == 5


def test_frozen_sensor_is_dropped_after_minutes_and_comes_back_when_it_moves():
    f = ValueFilter(frozen_s=180)
    kept = [build_reading(float(t), {"stuck": 61.0, "live": 60.0 + (t // 10) % 2}, f) for t in range(0, 240, 10)]
    assert all("stuck" in r.sensors for r in kept if r.t_s < 180)
    assert all("stuck" not in r.sensors for r in kept if r.t_s >= 180)
    assert all("live" in r.sensors for r in kept)
    moved = build_reading(250.0, {"stuck": 61.5, "live": 60.0}, f)
    assert moved.sensors["stuck"] == 61.5


def test_frozen_check_can_be_turned_off():
    f = ValueFilter(frozen_s=None)
    r = [build_reading(float(t), {"replay": 70.0}, f) for t in range(0, 1000, 100)]
    assert all(x.temp_c == 70.0 for x in r)


def test_deciding_value_averages_chosen_sensors_and_hottest_is_beside_it():
    values = {"pACC MTR Temp Sensor1": 80.0, "pACC MTR Temp Sensor2": 90.0, "GPU MTR Temp Sensor1": 99.0}
    r = build_reading(0.0, values, ValueFilter(), deciding=lambda n: n.startswith("pACC"))
    assert r.temp_c == 85.0
    assert (r.hottest_name, r.hottest_c) == ("GPU MTR Temp Sensor1", 99.0)


def test_when_no_deciding_sensor_is_valid_all_valid_sensors_count():
    r = build_reading(0.0, {"cpu": math.nan, "gpu": 70.0}, ValueFilter(), deciding=lambda n: n == "cpu")
    assert r.temp_c == 70.0


def test_combine_max():
    r = build_reading(0.0, {"GPU0": 60.0, "GPU1": 80.0}, ValueFilter(), combine=max)
    assert r.temp_c == 80.0


def test_choose_picks_from_all_valid_sensors_and_picking_none_means_no_deciding_value():
    values = {"die a": 90.0, "die b": 80.0, "board": 30.0, "die c": math.nan}
    r = build_reading(0.0, values, ValueFilter(), choose=lambda kept: [k for k in kept if k.startswith("die")])
    assert r.temp_c == 85.0 and r.hottest_name == "die a"
    none = build_reading(0.0, {"board": 30.0}, ValueFilter(), choose=lambda kept: [])
    assert none.temp_c is None and none.sensors == {"board": 30.0} and none.hottest_c == 30.0
    with pytest.raises(ValueError, match="either deciding or choose"):
        build_reading(0.0, values, ValueFilter(), deciding=bool, choose=list)
