"""The ``linux`` source: ``/sys/class/hwmon`` first, ``/sys/class/thermal`` as the fallback.

The files are read directly (psutil's ``sensors_temperatures`` reads the same ones), under a
root folder that tests point at a fake tree. The deciding value is the average of the CPU's
own sensors: per-core sensors where the chip has them (Intel ``coretemp`` "Core N", AMD
``k10temp`` "Tccd N"), else the chip's die or package sensor, else every sensor found.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fintrain.thermal.reading import FROZEN_WHOLE_DEGREES_S, Reading, ValueFilter, build_reading

# hwmon chips that measure the CPU itself.
CPU_CHIPS = {"coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "soc_thermal", "x86_pkg_temp"}
# thermal zone types that measure the CPU.
_CPU_ZONE = re.compile(r"cpu|x86_pkg|soc|package|core", re.IGNORECASE)
# Preferred CPU sensor labels, best first: per-core or per-CCD sensors, then die, then package.
_LABEL_PREFERENCE = (re.compile(r"^(Core|Tccd)\s*\d+", re.IGNORECASE), re.compile(r"^Tdie", re.IGNORECASE),
                     re.compile(r"^(Package|Tctl)", re.IGNORECASE))


@dataclass(frozen=True)
class _Input:
    """One temperature file and the name it is shown under."""

    path: Path
    name: str
    cpu: bool
    rank: int  # position in _LABEL_PREFERENCE (len() when none matches)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _rank(label: str) -> int:
    for i, pattern in enumerate(_LABEL_PREFERENCE):
        if pattern.search(label):
            return i
    return len(_LABEL_PREFERENCE)


def discover(root: Path = Path("/")) -> list[_Input]:
    """Every temperature input under ``root``/sys/class: hwmon chips, else thermal zones."""
    inputs: list[_Input] = []
    hwmon = root / "sys" / "class" / "hwmon"
    for chip_dir in sorted(hwmon.glob("hwmon*")):
        chip = _read_text(chip_dir / "name") or chip_dir.name
        for temp_file in sorted(chip_dir.glob("temp*_input")):
            index = temp_file.name[: -len("_input")]
            label = _read_text(chip_dir / f"{index}_label") or index
            inputs.append(_Input(temp_file, f"{chip} {label}", chip in CPU_CHIPS, _rank(label)))
    if inputs:
        return inputs
    thermal = root / "sys" / "class" / "thermal"
    for zone in sorted(thermal.glob("thermal_zone*")):
        kind = _read_text(zone / "type") or zone.name
        if (zone / "temp").exists():
            inputs.append(_Input(zone / "temp", f"{zone.name} {kind}", bool(_CPU_ZONE.search(kind)),
                                 len(_LABEL_PREFERENCE)))
    return inputs


class LinuxSensor:
    """CPU temperatures from sysfs (millidegrees C in each file)."""

    def __init__(self, inputs: list[_Input], clock: Callable[[], float] = time.monotonic):
        self.inputs = inputs
        self.name = "linux"
        self.problem: str | None = None
        self._clock = clock
        self._filter = ValueFilter(frozen_s=FROZEN_WHOLE_DEGREES_S)
        cpu = [i for i in inputs if i.cpu]
        best = min((i.rank for i in cpu), default=None)
        self.deciding = {i.name for i in cpu if i.rank == best}

    @classmethod
    def open(cls, root: Path = Path("/"), clock: Callable[[], float] = time.monotonic) -> LinuxSensor | None:
        """The sensor, or None when ``root`` has no temperature files at all."""
        inputs = discover(root)
        return cls(inputs, clock) if inputs else None

    @property
    def dropped(self) -> int:
        """Faulty values thrown away so far."""
        return self._filter.dropped

    def read(self) -> Reading | None:
        """One value from each file; files that vanish or fail are skipped."""
        values: dict[str, float] = {}
        for item in self.inputs:
            text = _read_text(item.path)
            if text is None:
                continue
            try:
                values[item.name] = int(text) / 1000.0
            except ValueError:
                values[item.name] = float("nan")  # counted and reported by the filter
        if not values:
            self.problem = "the sysfs temperature files could not be read"
            return None
        deciding = self.deciding.__contains__ if self.deciding else None
        reading = build_reading(self._clock(), values, self._filter, deciding=deciding)
        self.problem = None if reading.has_temperature else "; ".join(reading.dropped)
        return reading

    def close(self) -> None:
        """Nothing to release."""
