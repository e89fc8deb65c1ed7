"""The macos source with its ctypes calls replaced by a fake IOKit, CoreFoundation and libSystem.

The fakes receive the same ctypes arguments the real functions would (``byref`` structs,
string buffers, arrays), so these tests exercise the module's calling code, the SMC struct
protocol and the release of everything it copies. A last test reads the real hardware and
runs only on macOS.
"""

from __future__ import annotations

import ctypes
import platform
import struct
import sys

import pytest

from fintrain.thermal import NoSensor, open_sensor
from fintrain.thermal.macos import (
    HID_EVENT_TEMPERATURE,
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
