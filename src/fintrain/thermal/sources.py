"""Temperature sources by name, and ``open_sensor`` that turns a spec into a sensor.

Specs: ``auto`` (default), ``none``, ``macos``, ``linux``, ``nvidia``, ``command:CMD``,
``replay:PATH[?speed=N]``. A spec that cannot work as written (an unknown name, a missing trace
file, a command not on PATH, NVML bindings not installed) is a ThermalError; a machine that
simply has no such sensor gets a ``NoSensor`` that gives no reading and says why, so a run goes
on with a warning (or refuses to start, with ``require_sensor``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from fintrain.errors import ThermalError
from fintrain.thermal.command import CommandSensor
from fintrain.thermal.linux import LinuxSensor
from fintrain.thermal.macos import MacUnavailable, open_macos
from fintrain.thermal.nvidia import NvidiaSensor
from fintrain.thermal.replay import ReplaySensor
from fintrain.thermal.sensor import NoSensor, Sensor

logger = logging.getLogger(__name__)

# (argument, json_field, clock) -> sensor
SensorFactory = Callable[[str, "str | None", Callable[[], float]], Sensor]

SOURCE_NAMES = ("auto", "none", "macos", "linux", "nvidia", "command", "replay")
# The sources auto tries, in order. NVIDIA before the CPU sensors: on a box with a GPU the
# training runs there and it is the part that heats up.
AUTO_ORDER = ("macos", "nvidia", "linux")
SYSFS_ROOT = Path("/")


def _macos(arg: str, json_field: str | None, clock: Callable[[], float]) -> Sensor:
    try:
        return open_macos(clock)
    except MacUnavailable as exc:
        return NoSensor(f"macos: {exc}", name="macos")


def _linux(arg: str, json_field: str | None, clock: Callable[[], float]) -> Sensor:
    sensor = LinuxSensor.open(SYSFS_ROOT, clock)
    if sensor is None:
        return NoSensor("linux: no temperature files under /sys/class/hwmon or /sys/class/thermal "
                        "(virtual machines often have none)", name="linux")
    return sensor


def _nvidia(arg: str, json_field: str | None, clock: Callable[[], float]) -> Sensor:
    try:
        return NvidiaSensor.open(clock)
    except ThermalError:
        raise
    except Exception as exc:  # pynvml.NVMLError: no driver, no GPU
        return NoSensor(f"nvidia: NVML is not usable here ({exc})", name="nvidia")


def _command(arg: str, json_field: str | None, clock: Callable[[], float]) -> Sensor:
    return CommandSensor(arg, json_field, clock=clock)


def _replay(arg: str, json_field: str | None, clock: Callable[[], float]) -> Sensor:
    return ReplaySensor.open(arg, clock)


SENSORS: dict[str, SensorFactory] = {
    "macos": _macos,
    "linux": _linux,
    "nvidia": _nvidia,
    "command": _command,
    "replay": _replay,
}


def parse_spec(spec: str) -> tuple[str, str]:
    """``command:macmon pipe`` -> ("command", "macmon pipe"); a ThermalError for an unknown name."""
    name, _, arg = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in SOURCE_NAMES:
        raise ThermalError(
            f"unknown thermal source {spec!r}; use one of auto, none, macos, linux, nvidia, "
            "command:CMD, replay:PATH[?speed=N]"
        )
    if name in ("command", "replay") and not arg.strip():
        example = "command:'macmon pipe -s 0'" if name == "command" else "replay:trace.csv?speed=20"
        raise ThermalError(f"the {name} source needs an argument, e.g. {example}")
    if name not in ("command", "replay") and arg:
        raise ThermalError(f"the {name} source takes no argument (got {spec!r})")
    return name, arg.strip()


def _auto(clock: Callable[[], float]) -> Sensor:
    """The first source that gives a reading on this machine, else a NoSensor saying what was tried."""
    tried = []
    for name in AUTO_ORDER:
        if name == "nvidia":
            try:
                __import__("pynvml")
            except ImportError:
                tried.append("nvidia: nvidia-ml-py not installed")
                continue
        try:
            sensor = SENSORS[name]("", None, clock)
        except ThermalError as exc:
            tried.append(str(exc))
            continue
        if isinstance(sensor, NoSensor):
            tried.append(sensor.reason)
            continue
        try:
            reading = sensor.read()
        except Exception as exc:
            reading = None
            logger.debug("auto: %s failed on its first read: %s", name, exc)
        if reading is not None and (reading.has_temperature or reading.pressure is not None):
            return sensor
        tried.append(f"{name}: {getattr(sensor, 'problem', None) or 'no reading'}")
        sensor.close()
    return NoSensor("no temperature sensor available on this machine (" + "; ".join(tried) + ")", name="auto")


def open_sensor(
    spec: str, json_field: str | None = None, *, clock: Callable[[], float] = time.monotonic
) -> Sensor | None:
    """The sensor a spec names.

    Args:
        spec: ``auto``, ``none``, ``macos``, ``linux``, ``nvidia``, ``command:CMD`` or
            ``replay:PATH[?speed=N]``.
        json_field: the dotted JSON field a ``command:`` source reads (e.g. temp.cpu_temp_avg).
        clock: the monotonic clock readings are stamped with; a replay plays on it, so a test
            that moves a fake clock gets a deterministic replay.

    Returns:
        None for ``none`` (monitoring off); otherwise a sensor. ``auto`` gives the first source
        with a reading, or a NoSensor that gives no reading and says what it tried.

    Raises:
        ThermalError: a spec that cannot work as written.
    """
    name, arg = parse_spec(spec)
    if name == "none":
        return None
    if name == "auto":
        return _auto(clock)
    return SENSORS[name](arg, json_field, clock)
