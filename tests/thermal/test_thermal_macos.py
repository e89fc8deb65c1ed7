"""The macos source with its ctypes calls replaced by a fake IOKit, CoreFoundation and libSystem.

The fakes receive the same ctypes arguments the real functions would (``byref`` structs,
string buffers, arrays), so these tests exercise the module's calling code, the SMC struct
protocol and the release of everything it copies. A last test reads the real hardware and
runs only on macOS.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fintrain.config import ThermalConfig
from fintrain.errors import ThermalError
from fintrain.thermal import NoSensor, ThermalMonitor, open_sensor
from fintrain.thermal.macos import (
    HID_EVENT_TEMPERATURE,
    SMC_MISSES_BEFORE_HID,
    KeyData,
    MacBindings,
    MacSensor,
    MacUnavailable,
    fourcc,
    key_name,
)

FLT = fourcc("flt ")
UI32 = fourcc("ui32")


class CFWorld:
    """Fake CoreFoundation objects behind integer handles, with ownership tracking."""

    def __init__(self):
        self.objects: dict[int, object] = {}
        self.owned: set[int] = set()
        self.next = 1000

    def new(self, obj: object, owned: bool = True) -> int:
        self.next += 1
        self.objects[self.next] = obj
        if owned:
            self.owned.add(self.next)
        return self.next

    # CoreFoundation functions.
    def CFStringCreateWithCString(self, alloc, text, encoding):
        return self.new(text.decode())

    def CFNumberCreate(self, alloc, kind, ref):
        return self.new(ref._obj.value)

    def CFDictionaryCreate(self, alloc, keys, values, n, kcb, vcb):
        return self.new({self.objects[keys[i]]: self.objects[values[i]] for i in range(n)})

    def CFArrayGetCount(self, arr):
        return len(self.objects[arr])

    def CFArrayGetValueAtIndex(self, arr, i):
        return self.objects[arr][i]

    def CFStringGetCString(self, ref, buf, size, encoding):
        buf.value = self.objects[ref].encode()
        return True

    def CFRelease(self, ref):
        assert ref in self.owned, f"released {ref} that was not owned"
        self.owned.remove(ref)


class FakeSMC:
    """An SMC with a few keys; answers IOConnectCallStructMethod like the real user client."""

    def __init__(self, temps: dict[str, float], extra: dict[str, tuple[int, bytes]] | None = None):
        self.keys: dict[str, tuple[int, int, bytes]] = {}
        for key, value in temps.items():
            self.keys[key] = (4, FLT, struct.pack("<f", value))
        for key, (kind, raw) in (extra or {}).items():
            self.keys[key] = (len(raw), kind, raw)
        names = list(self.keys)
        self.keys["#KEY"] = (4, UI32, struct.pack(">I", len(names)))
        self.order = names
        self.calls = 0

    def call(self, request: KeyData, out: KeyData) -> None:
        self.calls += 1
        if request.data8 == 8:  # key by index
            out.key = fourcc(self.order[request.data32])
            return
        key = key_name(request.key)
        if key not in self.keys:
            out.result = 132
            return
        size, kind, raw = self.keys[key]
        if request.data8 == 9:
            out.key_info.data_size = size
            out.key_info.data_type = kind
        elif request.data8 == 5:
            assert request.key_info.data_size == size, "a read must carry the key's size"
            for i, b in enumerate(raw):
                out.bytes[i] = b


class FakeIOKit:
    def __init__(self, world: CFWorld, smc: FakeSMC | None, hid: dict[str, float] | None):
        self.world = world
        self.smc = smc
        self.hid = hid or {}
        self.released_io: list[int] = []
        self.matching = None
        self.closed = []

    # SMC.
    def IOServiceMatching(self, name):
        assert name == b"AppleSMC"
        return 1

    def IOServiceGetMatchingServices(self, port, matching, iterator):
        if self.smc is None:
            return 0xE00002C0  # kIOReturnNoDevice
        iterator._obj.value = 50
        self._services = [11, 12]
        return 0

    def IOIteratorNext(self, it):
        return self._services.pop(0) if self._services else 0

    def IORegistryEntryGetName(self, service, buf):
        buf.value = {11: b"AppleSMC", 12: b"AppleSMCKeysEndpoint"}[service]
        return 0

    def IOServiceOpen(self, service, task, kind, conn):
        assert service == 12
        conn._obj.value = 77
        return 0

    def IOConnectCallStructMethod(self, conn, selector, inp, in_size, out, out_size):
        assert (conn, selector, in_size, out_size._obj.value) == (77, 2, 80, 80)
        self.smc.call(inp._obj, out._obj)
        return 0

    def IOServiceClose(self, conn):
        self.closed.append(conn)

    def IOObjectRelease(self, obj):
        self.released_io.append(obj)

    # HID.
    def IOHIDEventSystemClientCreate(self, alloc):
        return self.world.new("client")

    def IOHIDEventSystemClientSetMatching(self, client, matching):
        self.matching = self.world.objects[matching]
        return 0

    def IOHIDEventSystemClientCopyServices(self, client):
        services = [self.world.new(("service", name), owned=False) for name in self.hid]
        return self.world.new(services)

    def IOHIDServiceClientCopyProperty(self, service, key):
        assert self.world.objects[key] == "Product"
        return self.world.new(self.world.objects[service][1])

    def IOHIDServiceClientCopyEvent(self, service, kind, options, timestamp):
        assert kind == HID_EVENT_TEMPERATURE
        return self.world.new(("event", self.hid[self.world.objects[service][1]]))

    def IOHIDEventGetFloatValue(self, event, field):
        assert field == HID_EVENT_TEMPERATURE << 16
        return self.world.objects[event][1]


class FakeSystem:
    def __init__(self, level: int | None):
        self.level = level
        self.cancelled = False

    def notify_register_check(self, name, token):
        if self.level is None:
            return 1
        assert name == b"com.apple.system.thermalpressurelevel"
        token._obj.value = 9
        return 0

    def notify_get_state(self, token, state):
        state._obj.value = self.level
        return 0

    def notify_cancel(self, token):
        self.cancelled = True
        return 0


def bindings(smc=None, hid=None, level=None):
    world = CFWorld()
    iokit = FakeIOKit(world, smc, hid)
    system = FakeSystem(level)
    b = MacBindings(iokit, world, system, task_port=3, key_callbacks=0, value_callbacks=0)
    return b, world, iokit, system


def test_keydata_layout_matches_the_smc_struct():
    assert ctypes.sizeof(KeyData) == 80
    fields = ("key", "key_info", "result", "data8", "data32", "bytes")
    offsets = {name: getattr(KeyData, name).offset for name in fields}
    assert offsets == {"key": 0, "key_info": 28, "result": 40, "data8": 42, "data32": 44, "bytes": 48}
    assert fourcc("TC0P") == 0x54433050 and key_name(0x54433050) == "TC0P"


def test_smc_cpu_keys_decide_and_gpu_is_the_hottest(clock):
    smc = FakeSMC(
        {"Tp01": 70.0, "Tp05": 80.0, "Te04": 60.0, "Tg0f": 88.0, "Tp09": 0.0},
        extra={"TB0T": (fourcc("sp78"), b"\x20\x00"), "FNum": (fourcc("ui8 "), b"\x02")},
    )
    b, world, iokit, system = bindings(smc=smc, level=1)
    sensor = MacSensor(b, clock=clock)
    r = sensor.read()
    assert sensor.name == "macos smc"
    assert r.temp_c == pytest.approx(70.0)  # (70 + 80 + 60) / 3; Tp09 at 0 C is power-gated
    assert (r.hottest_name, r.hottest_c) == ("Tg0f", pytest.approx(88.0))
    assert "Tp09" not in r.sensors and "TB0T" not in r.sensors
    assert r.pressure == 1
    assert sensor.dropped == 0
    sensor.read()
    sensor.close()
    assert iokit.closed == [77]
    assert 11 in iokit.released_io and 12 in iokit.released_io and 50 in iokit.released_io
    assert system.cancelled


def test_hid_is_the_fallback_and_releases_what_it_copies(clock):
    hid = {
        "pACC MTR Temp Sensor0": 71.0,
        "pACC MTR Temp Sensor1": 75.0,
        "eACC MTR Temp Sensor0": 8.0,  # power-gated cluster
        "PMU tcal": 51.0,  # constant calibration value
        "GPU MTR Temp Sensor1": 90.0,
        "NAND CH0 temp": 40.0,
    }
    b, world, iokit, system = bindings(smc=None, hid=hid, level=0)
    sensor = MacSensor(b, clock=clock)
    r = sensor.read()
    assert sensor.name == "macos hid"
    assert iokit.matching == {"PrimaryUsagePage": 0xFF00, "PrimaryUsage": 5}
    assert r.temp_c == pytest.approx(73.0)
    assert r.hottest_name == "GPU MTR Temp Sensor1"
    assert "PMU tcal" not in r.sensors and "eACC MTR Temp Sensor0" not in r.sensors
    assert r.pressure == 0
    sensor.close()
    assert world.owned == set()  # every copy, event, client and key released


def test_m3_style_pmu_tdie_sensors_decide(clock):
    hid = {"PMU tdie1": 80.0, "PMU tdie2": 84.0, "PMU tdev1": 50.0, "PMU2 tdie3": 82.0}
    b, *_ = bindings(hid=hid)
    assert MacSensor(b, clock=clock).read().temp_c == pytest.approx(82.0)


def test_pressure_only_still_gives_readings(clock):
    b, *_ = bindings(smc=None, hid={}, level=2)
    sensor = MacSensor(b, clock=clock)
    r = sensor.read()
    assert r.temp_c is None and r.pressure == 2
    assert "no die temperature" in sensor.problem


def test_nothing_works_says_why():
    b, *_ = bindings(smc=None, hid={}, level=None)
    with pytest.raises(MacUnavailable, match="SMC.*HID.*pressure"):
        MacSensor(b)


# Sensor lists in the naming each chip generation reports (REFERENCE.md; macmon's and Stats'
# trackers), at a moment of CPU load: the cores hot, the rest of the SoC cooler.
M1_M2_HID = {
    "pACC MTR Temp Sensor2": 88.0, "pACC MTR Temp Sensor3": 92.0, "pACC MTR Temp Sensor4": 90.0,
    "eACC MTR Temp Sensor0": 74.0, "eACC MTR Temp Sensor3": 76.0,
    "GPU MTR Temp Sensor1": 52.0, "GPU MTR Temp Sensor4": 51.0,
    "SOC MTR Temp Sensor0": 61.0, "SOC MTR Temp Sensor1": 60.0,
    "PMU tdie1": 55.0, "PMU tdie2": 57.0, "PMU tdie4": 56.0, "PMU2 tdie1": 54.0,
    "PMU tdev1": 41.0, "PMU tcal": 51.8,
    "NAND CH0 temp": 37.0, "gas gauge battery": 31.0,
}
M3_HID = {
    "PMU tdie1": 86.0, "PMU tdie2": 90.0, "PMU tdie3": 88.0, "PMU2 tdie1": 84.0,
    "PMU tdev1": 44.0, "PMU tdev2": 42.0, "PMU tcal": 51.8,
    "NAND CH0 temp": 36.0, "gas gauge battery": 30.0,
}
NO_DIE_HID = {
    "GPU MTR Temp Sensor1": 36.0, "SOC MTR Temp Sensor0": 34.0, "PMU tdev1": 33.0,
    "NAND CH0 temp": 32.0, "gas gauge battery": 27.0, "PMU tcal": 51.8,
}
M5_SMC = {"Tp0a": 93.0, "Tp0b": 97.0, "Ts0a": 99.0, "Ts1b": 95.0, "Tg0f": 60.0, "Tg1b": 58.0}


def _monitor_status(sensor):
    return ThermalMonitor(ThermalConfig(), sensor).sample_once()


def test_m1_m2_naming_averages_the_acc_mtr_sensors_not_pmu_tdie(clock):
    b, *_ = bindings(hid=M1_M2_HID, level=0)
    sensor = MacSensor(b, clock=clock)
    status = _monitor_status(sensor)
    # (88 + 92 + 90 + 74 + 76) / 5; with the tdie sensors in, it would be 72.1.
    assert status.temp_c == pytest.approx(84.0)
    assert status.band == "acceptable"
    assert status.hottest_name == "pACC MTR Temp Sensor3"


def test_pmu_tdie_decides_only_where_no_acc_mtr_sensor_is_valid(clock):
    b, *_ = bindings(hid=M3_HID, level=0)
    assert _monitor_status(MacSensor(b, clock=clock)).temp_c == pytest.approx(87.0)
    # M1/M2 with every CPU cluster power-gated: the tdie sensors are all that is left of the die.
    gated = {k: (6.0 if "ACC" in k else v) for k, v in M1_M2_HID.items()}
    b, *_ = bindings(hid=gated, level=0)
    assert _monitor_status(MacSensor(b, clock=clock)).temp_c == pytest.approx(55.5)


def test_no_die_sensor_means_no_die_temperature_and_says_so(clock):
    b, *_ = bindings(hid=NO_DIE_HID, level=0)
    sensor = MacSensor(b, clock=clock)
    status = _monitor_status(sensor)
    assert status.temp_c is None and status.smoothed_c is None
    assert status.band == "no reading"  # never a calm "normal" from the battery and the NAND
    assert "none of the 5 valid sensors is a CPU die sensor" in sensor.problem
    assert "no die temperature" in status.reason
    assert status.hottest_name == "GPU MTR Temp Sensor1"  # still shown, beside no temperature
    assert status.sensors and "bands off" in status.describe()


def test_smc_ts_keys_count_as_cpu(clock):
    b, *_ = bindings(smc=FakeSMC(M5_SMC), level=0)
    sensor = MacSensor(b, clock=clock)
    assert sensor.name == "macos smc"
    r = sensor.read()
    assert r.temp_c == pytest.approx(96.0)  # Tp0a, Tp0b, Ts0a, Ts1b; not the Tg keys
    assert "Ts0a" in r.sensors


def test_smc_with_gpu_keys_only_is_passed_over_for_hid(clock):
    b, *_ = bindings(smc=FakeSMC({"Tg0f": 55.0, "Tg1b": 54.0}), hid=M3_HID, level=0)
    sensor = MacSensor(b, clock=clock)
    assert sensor.name == "macos hid"
    assert sensor.read().temp_c == pytest.approx(87.0)


def test_smc_that_stops_answering_falls_back_to_hid(clock, caplog):
    smc = FakeSMC(M5_SMC)
    b, world, iokit, _ = bindings(smc=smc, hid=M1_M2_HID, level=0)
    sensor = MacSensor(b, clock=clock)
    assert sensor.read().temp_c == pytest.approx(96.0)
    smc.keys = {"#KEY": smc.keys["#KEY"]}  # reads of the known keys now fail with an SMC error
    for _ in range(SMC_MISSES_BEFORE_HID):
        clock.advance(1.0)
        r = sensor.read()
        assert r.temp_c is None and sensor.name == "macos smc"
    with caplog.at_level(logging.WARNING, logger="fintrain.thermal.macos"):
        clock.advance(1.0)
        r = sensor.read()
    assert sensor.name == "macos hid"
    assert r.temp_c == pytest.approx(84.0)
    assert "reading the IOHID temperature sensors instead" in caplog.text
    assert iokit.closed == [77]  # the SMC connection was closed
    sensor.close()
    assert world.owned == set()


def test_smc_silent_with_no_hid_die_sensor_stays_and_comes_back(clock):
    smc = FakeSMC(M5_SMC)
    b, *_ = bindings(smc=smc, hid=NO_DIE_HID, level=0)
    sensor = MacSensor(b, clock=clock)
    saved = dict(smc.keys)
    smc.keys = {"#KEY": saved["#KEY"]}
    for _ in range(2 * SMC_MISSES_BEFORE_HID + 1):
        clock.advance(1.0)
        status = sensor.read()
        assert status.temp_c is None
    assert sensor.name == "macos smc" and sensor.problem
    smc.keys = saved
    assert sensor.read().temp_c == pytest.approx(96.0)


# Every sensor name of the three generations; any subset of them, at any of these values.
ALL_NAMES = sorted(set(M1_M2_HID) | set(M3_HID) | set(NO_DIE_HID))


def _expected_die_mean(values: dict[str, float]) -> float | None:
    valid = {k: v for k, v in values.items() if v >= 15.0 and "tcal" not in k}
    acc = [v for k, v in valid.items() if "ACC MTR Temp" in k]
    tdie = [v for k, v in valid.items() if k.startswith("PMU") and "tdie" in k]
    chosen = acc or tdie
    return sum(chosen) / len(chosen) if chosen else None


@given(
    st.dictionaries(st.sampled_from(ALL_NAMES), st.sampled_from([8.0, 30.0, 55.0, 72.0, 88.0, 97.0]),
                    max_size=len(ALL_NAMES)),
    st.sampled_from([None, 0, 2]),
)
def test_no_path_shows_a_band_without_a_die_temperature(hid, level):
    b, *_ = bindings(hid=hid, level=level)
    try:
        sensor = MacSensor(b, clock=lambda: 0.0)
    except MacUnavailable:
        assert level is None and _expected_die_mean(hid) is None
        return
    status = _monitor_status(sensor)
    expected = _expected_die_mean(hid)
    if expected is None:
        assert status.temp_c is None and status.band == "no reading"
        assert sensor.problem
    else:
        assert status.temp_c == pytest.approx(expected)
        assert status.band != "no reading"


def test_pressure_only_does_not_satisfy_require_sensor(clock):
    b, *_ = bindings(smc=None, hid={}, level=0)
    monitor = ThermalMonitor(ThermalConfig(require_sensor=True), MacSensor(b, clock=clock), clock=clock)
    with pytest.raises(ThermalError, match="only the OS's thermal pressure level"):
        monitor.start()


def test_pressure_only_is_said_plainly_at_start(clock, caplog):
    b, *_ = bindings(smc=None, hid={}, level=0)
    monitor = ThermalMonitor(ThermalConfig(), MacSensor(b, clock=clock), clock=clock)
    with caplog.at_level(logging.WARNING, logger="fintrain.thermal.monitor"):
        status = monitor.sample_once()
    assert "temperature bands (acceptable_c, warning_c, critical_c) do not apply" in caplog.text
    assert "pauses only at pressure heavy" in caplog.text
    assert status.band == "no reading" and status.pressure_only
    assert status.describe() == "no temperature, pressure nominal only (bands off)"
    monitor.close_sensor()


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the behaviour off macOS")
def test_macos_source_elsewhere_is_no_sensor():
    sensor = open_sensor("macos")
    assert isinstance(sensor, NoSensor)
    assert "macOS" in sensor.reason


@pytest.mark.skipif(
    sys.platform != "darwin" or platform.machine() != "arm64", reason="needs a real Apple-silicon Mac"
)
def test_real_apple_silicon_sensors():
    sensor = open_sensor("macos")
    assert not isinstance(sensor, NoSensor), getattr(sensor, "reason", "")
    try:
        r = sensor.read()
    finally:
        sensor.close()
    assert r is not None
    assert r.pressure in (0, 1, 2, 3, 4)
    assert r.temp_c is not None and 15 < r.temp_c < 120
    assert r.sensors and r.hottest_c >= r.temp_c
