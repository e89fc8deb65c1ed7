"""The ``macos`` source: Apple-silicon die temperatures and the OS's thermal pressure level.

All of it through ``ctypes``, no sudo:

- SMC keys first (macOS 14+): the ``AppleSMCKeysEndpoint`` service, ``IOConnectCallStructMethod``
  selector 2 with an 80-byte ``KeyData`` struct. ``Tp*``/``Te*``/``Ts*`` keys are CPU die
  sensors (``Ts*``: the M5's super cores, as macmon counts them), ``Tg*`` GPU; each is a 4-byte
  little-endian float (type ``flt ``).
- IOKit's HID temperature services as the fallback (what btop, macmon and stats use): services
  matching ``{"PrimaryUsagePage": 0xff00, "PrimaryUsage": 5}``, named by their ``Product``. An
  SMC that answers at start and then gives no die temperature for ``SMC_MISSES_BEFORE_HID``
  reads in a row is replaced by HID for the rest of the run.
- The thermal pressure level from libSystem's notify API
  (``com.apple.system.thermalpressurelevel``: 0 nominal .. 4 sleeping).

The deciding value is the average of the CPU die sensors only (what macmon calls
``cpu_temp_avg``; ``cpu_die_sensors`` says which): on HID the ``pACC``/``eACC MTR`` sensors
(M1, M2), and ``PMU tdie*`` only where no ACC MTR sensor is valid (M3 and later), because on
M1/M2 the ``tdie`` sensors cover the whole SoC and pull the average down under CPU load. A
sample without a CPU die sensor has no deciding value: GPU, SoC, NAND and battery sensors run
20-60 C cooler than a loaded die, and an average of them would show a calm "normal" that is not
the die. Readings below 15 C are power-gated clusters, not temperatures, and ``PMU tcal`` is a
constant calibration value: both are left out before anything else looks at the values.

The C functions are reached through a ``MacBindings`` object so that tests can replace them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import struct
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from fintrain.thermal.reading import Reading, ValueFilter, build_reading

logger = logging.getLogger(__name__)

IOKIT_PATH = "/System/Library/Frameworks/IOKit.framework/IOKit"
CF_PATH = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"
SYSTEM_PATH = "/usr/lib/libSystem.B.dylib"

PRESSURE_NOTIFICATION = b"com.apple.system.thermalpressurelevel"
K_CF_STRING_ENCODING_UTF8 = 0x08000100
K_CF_NUMBER_SINT32 = 3
HID_PAGE_APPLE_VENDOR = 0xFF00
HID_USAGE_TEMPERATURE = 5
HID_EVENT_TEMPERATURE = 15

SMC_SELECTOR = 2
SMC_CMD_READ_BYTES = 5
SMC_CMD_READ_INDEX = 8
SMC_CMD_READ_KEYINFO = 9
SMC_TYPE_FLT = int.from_bytes(b"flt ", "big")

POWER_GATED_BELOW_C = 15.0
SMC_CPU_PREFIXES = ("Tp", "Te", "Ts")
SMC_GPU_PREFIXES = ("Tg",)
# Reads in a row without a die temperature before a live SMC is given up for HID.
SMC_MISSES_BEFORE_HID = 3


class KeyDataVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint8), ("minor", ctypes.c_uint8), ("build", ctypes.c_uint8),
                ("reserved", ctypes.c_uint8), ("release", ctypes.c_uint16)]


class KeyDataPLimit(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint16), ("length", ctypes.c_uint16), ("cpu_p_limit", ctypes.c_uint32),
                ("gpu_p_limit", ctypes.c_uint32), ("mem_p_limit", ctypes.c_uint32)]


class KeyInfo(ctypes.Structure):
    _fields_ = [("data_size", ctypes.c_uint32), ("data_type", ctypes.c_uint32), ("data_attributes", ctypes.c_uint8)]


class KeyData(ctypes.Structure):
    """The SMC user client's 80-byte struct (key at 0, key_info at 28, result at 40, data8 at 42,
    data32 at 44, bytes at 48)."""

    _fields_ = [
        ("key", ctypes.c_uint32),
        ("vers", KeyDataVersion),
        ("p_limit_data", KeyDataPLimit),
        ("key_info", KeyInfo),
        ("result", ctypes.c_uint8),
        ("status", ctypes.c_uint8),
        ("data8", ctypes.c_uint8),
        ("data32", ctypes.c_uint32),
        ("bytes", ctypes.c_uint8 * 32),
    ]


def fourcc(key: str) -> int:
    """'TC0P' -> the big-endian u32 the SMC expects."""
    return int.from_bytes(key.encode("ascii"), "big")


def key_name(value: int) -> str:
    """The inverse of ``fourcc``."""
    return value.to_bytes(4, "big").decode("ascii", "replace")


class MacUnavailable(Exception):
    """A macOS temperature path that does not work on this machine (with the reason)."""


class MacBindings:
    """The IOKit, CoreFoundation and libSystem functions this module calls.

    ``load()`` opens the real libraries; tests build one from fake function tables.
    """

    def __init__(self, iokit: Any, cf: Any, system: Any, *, task_port: int = 0,
                 key_callbacks: int | None = None, value_callbacks: int | None = None):
        self.iokit = iokit
        self.cf = cf
        self.system = system
        self.task_port = task_port
        self.key_callbacks = key_callbacks
        self.value_callbacks = value_callbacks

    @classmethod
    def load(cls) -> MacBindings:
        """The real frameworks, with argument and result types declared (OSError if missing)."""
        iokit = ctypes.CDLL(IOKIT_PATH)
        cf = ctypes.CDLL(CF_PATH)
        system = ctypes.CDLL(SYSTEM_PATH)
        vp, u32, i32, i64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32, ctypes.c_int64
        signatures = {
            iokit: {
                "IOServiceMatching": ([ctypes.c_char_p], vp),
                "IOServiceGetMatchingServices": ([u32, vp, ctypes.POINTER(u32)], i32),
                "IOIteratorNext": ([u32], u32),
                "IORegistryEntryGetName": ([u32, ctypes.c_char_p], i32),
                "IOServiceOpen": ([u32, u32, u32, ctypes.POINTER(u32)], i32),
                "IOServiceClose": ([u32], i32),
                "IOObjectRelease": ([u32], i32),
                "IOConnectCallStructMethod": (
                    [u32, u32, vp, ctypes.c_size_t, vp, ctypes.POINTER(ctypes.c_size_t)], i32
                ),
                "IOHIDEventSystemClientCreate": ([vp], vp),
                "IOHIDEventSystemClientSetMatching": ([vp, vp], i32),
                "IOHIDEventSystemClientCopyServices": ([vp], vp),
                "IOHIDServiceClientCopyProperty": ([vp, vp], vp),
                "IOHIDServiceClientCopyEvent": ([vp, i64, i32, i64], vp),
                "IOHIDEventGetFloatValue": ([vp, u32], ctypes.c_double),
            },
            cf: {
                "CFStringCreateWithCString": ([vp, ctypes.c_char_p, u32], vp),
                "CFNumberCreate": ([vp, ctypes.c_long, vp], vp),
                "CFDictionaryCreate": ([vp, ctypes.POINTER(vp), ctypes.POINTER(vp), ctypes.c_long, vp, vp], vp),
                "CFArrayGetCount": ([vp], ctypes.c_long),
                "CFArrayGetValueAtIndex": ([vp, ctypes.c_long], vp),
                "CFStringGetCString": ([vp, ctypes.c_char_p, ctypes.c_long, u32], ctypes.c_bool),
                "CFRelease": ([vp], None),
            },
            system: {
                "notify_register_check": ([ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)], u32),
                "notify_get_state": ([ctypes.c_int, ctypes.POINTER(ctypes.c_uint64)], u32),
                "notify_cancel": ([ctypes.c_int], u32),
            },
        }
        for lib, table in signatures.items():
            for name, (argtypes, restype) in table.items():
                fn = getattr(lib, name)
                fn.argtypes = argtypes
                fn.restype = restype
        # mach_task_self() is a macro over this global.
        task_port = ctypes.c_uint32.in_dll(system, "mach_task_self_").value
        key_cb = ctypes.addressof(ctypes.c_void_p.in_dll(cf, "kCFTypeDictionaryKeyCallBacks"))
        value_cb = ctypes.addressof(ctypes.c_void_p.in_dll(cf, "kCFTypeDictionaryValueCallBacks"))
        return cls(iokit, cf, system, task_port=task_port, key_callbacks=key_cb, value_callbacks=value_cb)

    # CoreFoundation helpers.

    def cfstr(self, text: str) -> int:
        """A new CFString (release it)."""
        return self.cf.CFStringCreateWithCString(None, text.encode("utf-8"), K_CF_STRING_ENCODING_UTF8)

    def cfnum(self, value: int) -> int:
        """A new CFNumber holding an SInt32 (release it)."""
        number = ctypes.c_int32(value)
        return self.cf.CFNumberCreate(None, K_CF_NUMBER_SINT32, ctypes.byref(number))

    def to_str(self, ref: int | None) -> str | None:
        """A CFString's text."""
        if not ref:
            return None
        buf = ctypes.create_string_buffer(256)
        if not self.cf.CFStringGetCString(ref, buf, len(buf), K_CF_STRING_ENCODING_UTF8):
            return None
        return buf.value.decode("utf-8", "replace")

    def release(self, ref: int | None) -> None:
        """CFRelease, ignoring NULL."""
        if ref:
            self.cf.CFRelease(ref)


class SMC:
    """A connection to the SMC's key endpoint."""

    def __init__(self, b: MacBindings):
        self.b = b
        self.conn = self._open()
        self._info: dict[str, tuple[int, int]] = {}

    def _open(self) -> int:
        io = self.b.iokit
        iterator = ctypes.c_uint32(0)
        # IOServiceGetMatchingServices consumes the matching dictionary.
        if io.IOServiceGetMatchingServices(0, io.IOServiceMatching(b"AppleSMC"), ctypes.byref(iterator)) != 0:
            raise MacUnavailable("no AppleSMC service")
        chosen = 0
        try:
            while service := io.IOIteratorNext(iterator.value):
                name = ctypes.create_string_buffer(128)
                io.IORegistryEntryGetName(service, name)
                if name.value == b"AppleSMCKeysEndpoint" and not chosen:
                    chosen = service
                else:
                    io.IOObjectRelease(service)
        finally:
            io.IOObjectRelease(iterator.value)
        if not chosen:
            raise MacUnavailable("no AppleSMCKeysEndpoint service (SMC keys need Apple silicon)")
        conn = ctypes.c_uint32(0)
        status = io.IOServiceOpen(chosen, self.b.task_port, 0, ctypes.byref(conn))
        io.IOObjectRelease(chosen)
        if status != 0:
            raise MacUnavailable(f"IOServiceOpen on the SMC failed ({status:#x})")
        return conn.value

    def call(self, request: KeyData) -> KeyData:
        """One struct call; raises MacUnavailable on a kernel or SMC error."""
        out = KeyData()
        size = ctypes.c_size_t(ctypes.sizeof(KeyData))
        status = self.b.iokit.IOConnectCallStructMethod(
            self.conn, SMC_SELECTOR, ctypes.byref(request), ctypes.sizeof(KeyData), ctypes.byref(out),
            ctypes.byref(size),
        )
        if status != 0:
            raise MacUnavailable(f"IOConnectCallStructMethod failed ({status:#x})")
        if out.result != 0:
            raise MacUnavailable(f"SMC error {out.result} for key {key_name(request.key)!r}")
        return out

    def key_info(self, key: str) -> tuple[int, int]:
        """(data_size, data_type) of a key, cached."""
        if key not in self._info:
            out = self.call(KeyData(key=fourcc(key), data8=SMC_CMD_READ_KEYINFO))
            self._info[key] = (out.key_info.data_size, out.key_info.data_type)
        return self._info[key]

    def read_bytes(self, key: str) -> bytes:
        """A key's raw value."""
        size, kind = self.key_info(key)
        request = KeyData(key=fourcc(key), data8=SMC_CMD_READ_BYTES)
        request.key_info.data_size = size
        request.key_info.data_type = kind
        out = self.call(request)
        return bytes(out.bytes[: min(size, 32)])

    def keys(self) -> list[str]:
        """Every key the SMC knows, by index."""
        count = struct.unpack(">I", self.read_bytes("#KEY")[:4])[0]
        names = []
        for i in range(count):
            try:
                names.append(key_name(self.call(KeyData(data8=SMC_CMD_READ_INDEX, data32=i)).key))
            except MacUnavailable:
                continue
        return names

    def read_float(self, key: str) -> float:
        """A 4-byte ``flt `` key's value."""
        return struct.unpack("<f", self.read_bytes(key)[:4])[0]

    def temperature_keys(self) -> list[str]:
        """The CPU (``Tp``, ``Te``, ``Ts``) and GPU (``Tg``) keys stored as 4-byte floats."""
        found = []
        for key in self.keys():
            if not key.startswith(SMC_CPU_PREFIXES + SMC_GPU_PREFIXES):
                continue
            try:
                if self.key_info(key) == (4, SMC_TYPE_FLT):
                    found.append(key)
            except MacUnavailable:
                continue
        return found

    def close(self) -> None:
        """Close the connection."""
        if self.conn:
            self.b.iokit.IOServiceClose(self.conn)
            self.conn = 0


class HIDTemperatures:
    """IOKit HID temperature services, one fresh client per read (services come and go)."""

    def __init__(self, b: MacBindings):
        self.b = b
        keys = [b.cfstr("PrimaryUsagePage"), b.cfstr("PrimaryUsage")]
        values = [b.cfnum(HID_PAGE_APPLE_VENDOR), b.cfnum(HID_USAGE_TEMPERATURE)]
        self._product = b.cfstr("Product")
        key_array = (ctypes.c_void_p * 2)(*keys)
        value_array = (ctypes.c_void_p * 2)(*values)
        self._matching = b.cf.CFDictionaryCreate(None, key_array, value_array, 2, b.key_callbacks, b.value_callbacks)
        for ref in keys + values:
            b.release(ref)
        if not self._matching:
            raise MacUnavailable("cannot build the HID matching dictionary")

    def read(self) -> dict[str, float]:
        """Temperature by sensor name; empty when there are no services."""
        b, io = self.b, self.b.iokit
        client = io.IOHIDEventSystemClientCreate(None)
        if not client:
            return {}
        values: dict[str, float] = {}
        try:
            io.IOHIDEventSystemClientSetMatching(client, self._matching)
            services = io.IOHIDEventSystemClientCopyServices(client)
            if not services:
                return {}
            try:
                for i in range(b.cf.CFArrayGetCount(services)):
                    service = b.cf.CFArrayGetValueAtIndex(services, i)
                    if not service:
                        continue
                    name_ref = io.IOHIDServiceClientCopyProperty(service, self._product)
                    name = b.to_str(name_ref)
                    b.release(name_ref)
                    event = io.IOHIDServiceClientCopyEvent(service, HID_EVENT_TEMPERATURE, 0, 0)
                    if not name or not event:
                        b.release(event)
                        continue
                    value = io.IOHIDEventGetFloatValue(event, HID_EVENT_TEMPERATURE << 16)
                    b.release(event)
                    unique, n = name, 2
                    while unique in values:
                        unique, n = f"{name} #{n}", n + 1
                    values[unique] = float(value)
            finally:
                b.release(services)
        finally:
            b.release(client)
        return values

    def close(self) -> None:
        """Release the matching dictionary and the property name."""
        self.b.release(self._matching)
        self.b.release(self._product)
        self._matching = self._product = None


class PressureLevel:
    """The OS's thermal pressure level through libSystem's notify API."""

    def __init__(self, b: MacBindings):
        self.b = b
        token = ctypes.c_int(0)
        status = b.system.notify_register_check(PRESSURE_NOTIFICATION, ctypes.byref(token))
        if status != 0:
            raise MacUnavailable(f"notify_register_check failed ({status})")
        self.token = token.value

    def read(self) -> int | None:
        """0 nominal, 1 moderate, 2 heavy, 3 trapping, 4 sleeping; None if the call fails."""
        state = ctypes.c_uint64(0)
        if self.b.system.notify_get_state(self.token, ctypes.byref(state)) != 0:
            return None
        return int(state.value)

    def close(self) -> None:
        """Cancel the registration."""
        self.b.system.notify_cancel(self.token)


def is_smc_cpu_key(name: str) -> bool:
    """An SMC CPU die key: ``Tp*`` (performance), ``Te*`` (efficiency), ``Ts*`` (M5 super cores)."""
    return len(name) == 4 and name.startswith(SMC_CPU_PREFIXES)


def is_acc_mtr(name: str) -> bool:
    """A HID CPU cluster sensor of M1/M2: ``pACC MTR Temp Sensor*``, ``eACC MTR Temp Sensor*``."""
    return "ACC MTR Temp" in name


def is_pmu_tdie(name: str) -> bool:
    """A HID ``PMU tdie*`` sensor (also ``PMU2 tdie*``): the die sensors M3 and later expose."""
    return name.startswith("PMU") and "tdie" in name


def cpu_die_sensors(values: Mapping[str, float]) -> list[str]:
    """The names, among one sample's valid sensors, that the deciding value averages.

    SMC ``Tp*``/``Te*``/``Ts*`` keys and HID ``ACC MTR`` sensors when any is valid; ``PMU tdie*``
    only when none is (M3 and later); else nothing: no die sensor, no die temperature.
    """
    cores = [name for name in values if is_smc_cpu_key(name) or is_acc_mtr(name)]
    return cores or [name for name in values if is_pmu_tdie(name)]


def _usable(values: dict[str, float]) -> dict[str, float]:
    """Leave out power-gated clusters (they report 4-10 C) and the constant calibration sensor."""
    return {k: v for k, v in values.items() if "tcal" not in k and not v < POWER_GATED_BELOW_C}


class MacSensor:
    """Apple-silicon temperatures (SMC, else HID) and the thermal pressure level."""

    def __init__(self, b: MacBindings, clock: Callable[[], float] = time.monotonic):
        self.b = b
        self.name = "macos"
        self.problem: str | None = None
        self._clock = clock
        self._filter = ValueFilter()
        self._smc: SMC | None = None
        self._smc_keys: list[str] = []
        self._hid: HIDTemperatures | None = None
        self._pressure: PressureLevel | None = None
        self._smc_misses = 0
        why = []
        try:
            self._smc = SMC(b)
            self._smc_keys = self._smc.temperature_keys()
            if not cpu_die_sensors(_usable(self._read_smc())):
                raise MacUnavailable("the SMC has no CPU die key (Tp*, Te*, Ts*) with a value")
            self.name = "macos smc"
        except MacUnavailable as exc:
            why.append(f"SMC: {exc}")
            if self._smc is not None:
                self._smc.close()
            self._smc = None
            try:
                self._hid = HIDTemperatures(b)
                if not _usable(self._hid.read()):
                    raise MacUnavailable("no HID temperature service gives a value")
                self.name = "macos hid"
            except MacUnavailable as exc2:
                why.append(f"HID: {exc2}")
                if self._hid is not None:
                    self._hid.close()
                self._hid = None
        try:
            self._pressure = PressureLevel(b)
        except MacUnavailable as exc:
            why.append(f"pressure level: {exc}")
        if self._smc is None and self._hid is None and self._pressure is None:
            raise MacUnavailable("; ".join(why))
        if self._smc is None and self._hid is None:
            self.name = "macos pressure only"
            self.problem = "no die temperature, only the OS's thermal pressure level (" + "; ".join(why) + ")"

    @property
    def dropped(self) -> int:
        """Faulty values thrown away so far."""
        return self._filter.dropped

    def _read_smc(self) -> dict[str, float]:
        assert self._smc is not None
        values = {}
        for key in self._smc_keys:
            try:
                values[key] = self._smc.read_float(key)
            except MacUnavailable:
                continue
        return values

    def read(self) -> Reading | None:
        """One sample of every temperature sensor and the pressure level.

        ``temp_c`` is the average of ``cpu_die_sensors``; None (and ``problem`` says why) when
        the sample has no valid CPU die sensor.
        """
        if self._smc is not None and self._smc_misses >= SMC_MISSES_BEFORE_HID:
            self._fall_back_to_hid()
        if self._smc is not None:
            raw = self._read_smc()
        elif self._hid is not None:
            raw = self._hid.read()
        else:
            raw = {}
        level = self._pressure.read() if self._pressure is not None else None
        values = _usable(raw)
        reading = None
        if not values and level is None:
            self.problem = "no sensor answered"
        else:
            reading = build_reading(self._clock(), values, self._filter, choose=cpu_die_sensors, pressure=level)
            if reading.has_temperature:
                self.problem = None
            elif self._smc is not None or self._hid is not None:
                self.problem = "; ".join(reading.dropped) or _no_die_sensor(reading.sensors)
        if self._smc is not None:
            answered = reading is not None and reading.has_temperature
            self._smc_misses = 0 if answered else self._smc_misses + 1
        return reading

    def _fall_back_to_hid(self) -> None:
        """The SMC stopped giving a die temperature: read HID instead, if HID has one."""
        assert self._smc is not None
        misses, self._smc_misses = self._smc_misses, 0
        try:
            hid = HIDTemperatures(self.b)
        except MacUnavailable as exc:
            logger.info("the SMC gave no die temperature %d times in a row; HID: %s", misses, exc)
            return
        if not cpu_die_sensors(_usable(hid.read())):
            hid.close()
            logger.info("the SMC gave no die temperature %d times in a row; HID has none either", misses)
            return
        logger.warning("the SMC gave no die temperature %d times in a row; reading the IOHID "
                       "temperature sensors instead", misses)
        self._smc.close()
        self._smc, self._smc_keys, self._hid = None, [], hid
        self.name = "macos hid"

    def close(self) -> None:
        """Release the SMC connection, the HID matching dictionary and the notify token."""
        for part in (self._smc, self._hid, self._pressure):
            if part is not None:
                part.close()
        self._smc = self._hid = self._pressure = None


def _no_die_sensor(sensors: Mapping[str, float]) -> str:
    """The problem of a sample whose valid sensors include no CPU die sensor."""
    if not sensors:
        return "no die temperature: no sensor gave a valid value"
    names = sorted(sensors)
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"no die temperature: none of the {len(names)} valid sensors is a CPU die sensor ({shown})"


def open_macos(clock: Callable[[], float] = time.monotonic) -> MacSensor:
    """The macOS sensor; MacUnavailable (with the reason) where none of its paths works."""
    if sys.platform != "darwin":
        raise MacUnavailable(f"needs macOS on Apple silicon; this is {sys.platform}")
    try:
        bindings = MacBindings.load()
    except (OSError, AttributeError, ValueError) as exc:
        raise MacUnavailable(f"cannot load IOKit/CoreFoundation: {exc}") from exc
    return MacSensor(bindings, clock)
