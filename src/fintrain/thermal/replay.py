"""Recorded temperature traces: the ``replay:PATH[?speed=N]`` source and the CSV they use.

A trace is a CSV with the header ``t_s,temp_c[,pressure]``: ``t_s`` in seconds from the
trace's first sample, ``temp_c`` in C (empty where the source had no reading), ``pressure``
the OS's thermal pressure level (optional, may be empty). ``fintrain thermal-watch --log``
writes this format, so a recorded session can be replayed into a training run.
"""

from __future__ import annotations

import bisect
import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs

from fintrain.errors import ThermalError
from fintrain.thermal.reading import Reading, ValueFilter, build_reading

TRACE_HEADER = ("t_s", "temp_c", "pressure")


@dataclass(frozen=True)
class Trace:
    """A loaded trace: times in seconds (increasing), temperatures and pressure levels."""

    t_s: tuple[float, ...]
    temp_c: tuple[float | None, ...]
    pressure: tuple[int | None, ...]

    @property
    def duration_s(self) -> float:
        """Seconds from the first sample to the last."""
        return self.t_s[-1] - self.t_s[0]

    def at(self, t: float) -> tuple[float | None, int | None]:
        """Temperature and pressure at trace time ``t``.

        Temperature is interpolated linearly between samples (a sparse synthetic trace then
        plays smoothly), except next to an empty sample, which stays "no reading"; pressure
        holds the last sample's level. Before the start the first sample holds, after the end
        the last one.
        """
        i = bisect.bisect_right(self.t_s, t) - 1
        if i < 0:
            return self.temp_c[0], self.pressure[0]
        if i >= len(self.t_s) - 1:
            return self.temp_c[-1], self.pressure[-1]
        a, b = self.temp_c[i], self.temp_c[i + 1]
        if a is None or b is None:
            return a, self.pressure[i]
        frac = (t - self.t_s[i]) / (self.t_s[i + 1] - self.t_s[i])
        return a + (b - a) * frac, self.pressure[i]


def _number(text: str, what: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ThermalError(f"{where}: {what} {text!r} is not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise ThermalError(f"{where}: {what} {text!r} is not a finite number")
    return value


def read_trace(path: Path) -> Trace:
    """Load a trace CSV; a missing, empty or malformed file is a ThermalError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise ThermalError(f"replay trace not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ThermalError(f"replay trace {path} cannot be read: {exc}") from exc
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        raise ThermalError(f"replay trace {path} is empty; expected a header t_s,temp_c[,pressure]")
    header = [c.strip().lower() for c in rows[0]]
    if header[:2] != ["t_s", "temp_c"] or header[2:] not in ([], ["pressure"]):
        raise ThermalError(
            f"replay trace {path} must start with the header t_s,temp_c[,pressure]; found {','.join(rows[0])}"
        )
    times: list[float] = []
    temps: list[float | None] = []
    levels: list[int | None] = []
    for lineno, row in enumerate(rows[1:], start=2):
        where = f"{path} line {lineno}"
        if len(row) > len(header):
            raise ThermalError(f"{where}: {len(row)} columns, the header has {len(header)}")
        t = _number(row[0], "t_s", where)
        if t is None:
            raise ThermalError(f"{where}: t_s is empty")
        if times and t <= times[-1]:
            raise ThermalError(f"{where}: t_s={t:g} does not increase (previous {times[-1]:g})")
        temp = _number(row[1], "temp_c", where) if len(row) > 1 else None
        level = _number(row[2], "pressure", where) if len(row) > 2 else None
        if level is not None and (level != int(level) or not 0 <= level <= 4):
            raise ThermalError(f"{where}: pressure {level:g} is not a level 0-4")
        times.append(t)
        temps.append(temp)
        levels.append(None if level is None else int(level))
    if not times:
        raise ThermalError(f"replay trace {path} has a header but no samples")
    return Trace(tuple(times), tuple(temps), tuple(levels))


def parse_replay_spec(arg: str) -> tuple[Path, float]:
    """``PATH[?speed=N]`` -> (path, speed)."""
    path_text, sep, query = arg.rpartition("?")
    if not sep:
        path_text, query = arg, ""
    if not path_text:
        raise ThermalError("replay: needs a trace file, e.g. replay:trace.csv?speed=20")
    speed = 1.0
    if query:
        params = parse_qs(query, keep_blank_values=True)
        unknown = set(params) - {"speed"}
        if unknown:
            raise ThermalError(f"replay:{arg}: unknown option {', '.join(sorted(unknown))}; only speed=N is known")
        try:
            speed = float(params["speed"][-1])
        except ValueError:
            raise ThermalError(f"replay:{arg}: speed must be a number, e.g. speed=20") from None
        if not (speed > 0 and math.isfinite(speed)):
            raise ThermalError(f"replay:{arg}: speed must be above 0, got {speed:g}")
    return Path(path_text), speed


class ReplaySensor:
    """Plays a recorded trace from its first read, ``speed`` times faster than real time.

    Readings carry trace time as their timestamps, so the policy's durations shrink with the
    speed. After the end of the trace the last value holds.
    """

    def __init__(self, trace: Trace, speed: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 name: str = "replay"):
        self.trace = trace
        self.speed = speed
        self.name = name
        self.problem: str | None = None
        self._clock = clock
        self._started: float | None = None
        # Holding the last value at the end is the point of a replay, not a stuck sensor.
        self._filter = ValueFilter(frozen_s=None)

    @classmethod
    def open(cls, arg: str, clock: Callable[[], float] = time.monotonic) -> ReplaySensor:
        """From ``PATH[?speed=N]``."""
        path, speed = parse_replay_spec(arg)
        return cls(read_trace(path), speed, clock, name=f"replay {path.name} x{speed:g}")

    @property
    def dropped(self) -> int:
        """Faulty values thrown away so far."""
        return self._filter.dropped

    def position_s(self) -> float:
        """Where in the trace the replay is now (starts on the first call)."""
        now = self._clock()
        if self._started is None:
            self._started = now
        return self.trace.t_s[0] + (now - self._started) * self.speed

    def read(self) -> Reading:
        """The trace's value at the current trace time."""
        t = self.position_s()
        temp, level = self.trace.at(t)
        values = {} if temp is None else {"replay": temp}
        reading = build_reading(t, values, self._filter, pressure=level)
        self.problem = None if reading.has_temperature else "the trace has no temperature here"
        return reading

    def close(self) -> None:
        """Nothing to release."""


class TraceWriter:
    """Writes samples in the trace format, ``t_s`` counted from the first sample.

    Each line goes out whole and is flushed, so a recording cut short by Ctrl-C or a crash is
    still a valid trace up to its last sample.
    """

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._t0: float | None = None
        self._last_t = -math.inf
        stream.write(",".join(TRACE_HEADER) + "\n")
        stream.flush()

    def write(self, t_s: float, temp_c: float | None, pressure: int | None) -> None:
        """Append one sample (empty cells for no reading and no pressure level).

        A sample no later than the previous one (to the millisecond) is skipped: ``read_trace``
        needs increasing times.
        """
        if self._t0 is None:
            self._t0 = t_s
        t = round(t_s - self._t0, 3)
        if t <= self._last_t:
            return
        self._last_t = t
        temp = "" if temp_c is None else f"{temp_c:.2f}"
        level = "" if pressure is None else str(pressure)
        self._stream.write(f"{t:.3f},{temp},{level}\n")
        self._stream.flush()
