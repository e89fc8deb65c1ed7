"""What a sensor returns, and the checks every raw value goes through before it counts.

A reading keeps every sensor's value by name, but decisions use one number, ``temp_c``: on an
Apple-silicon Mac the average of the CPU die sensors (a single sensor swings by 10 C from one
second to the next; the thresholds are meant for the average), elsewhere the source's own choice.
The hottest sensor travels beside it so that a display can show both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# Outside this range a value is a sensor fault, not a temperature.
LOWEST_C = 0.0
HIGHEST_C = 150.0
# A value that has not moved for this long is a stuck sensor (live sources only).
FROZEN_S = 300.0
# Sources that report whole degrees (NVML, most hwmon chips) can sit on one value for minutes
# on an idle machine, so they get longer before a value counts as stuck.
FROZEN_WHOLE_DEGREES_S = 600.0

PRESSURE_NAMES = {0: "nominal", 1: "moderate", 2: "heavy", 3: "trapping", 4: "sleeping"}
PRESSURE_HEAVY = 2
PRESSURE_TRAPPING = 3


def pressure_name(level: int | None) -> str:
    """'nominal', 'heavy', ... for a thermal pressure level; '-' when there is none."""
    if level is None:
        return "-"
    return PRESSURE_NAMES.get(level, f"level {level}")


@dataclass(frozen=True)
class Reading:
    """One sample from a temperature source.

    Attributes:
        t_s: when it was taken, in seconds (``time.monotonic`` for live sources, trace time for
            a replay). Every duration in the policy is measured on these timestamps.
        sensors: each valid sensor's temperature in C, by name.
        temp_c: the value decisions use; None when no valid value was left.
        hottest_c: the hottest valid sensor.
        hottest_name: its name.
        pressure: the OS's thermal pressure level (0 nominal .. 4 sleeping) where there is one.
        dropped: names of the values dropped from this sample as faulty, with the reason.
    """

    t_s: float
    sensors: Mapping[str, float] = field(default_factory=dict)
    temp_c: float | None = None
    hottest_c: float | None = None
    hottest_name: str | None = None
    pressure: int | None = None
    dropped: tuple[str, ...] = ()

    @property
    def has_temperature(self) -> bool:
        """True when the reading carries a deciding temperature."""
        return self.temp_c is not None


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean of a non-empty iterable."""
    items = list(values)
    return sum(items) / len(items)


class ValueFilter:
    """Drops faulty values and counts them: NaN, <= 0 C, > 150 C, or stuck for minutes.

    A stuck value is one that has not changed at all for ``frozen_s`` seconds of reading time;
    it becomes valid again as soon as it moves. Replays turn this check off (``frozen_s=None``)
    because holding the last value at the end of a trace is what they are meant to do.
    """

    def __init__(self, frozen_s: float | None = FROZEN_S):
        self.frozen_s = frozen_s
        self.dropped = 0
        self._since: dict[str, tuple[float, float]] = {}  # name -> (value, first seen at)
        self._warned: set[tuple[str, str]] = set()

    def clean(self, t_s: float, values: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
        """The valid values of one sample, and a description of each dropped one."""
        kept: dict[str, float] = {}
        dropped: list[str] = []
        for name, raw in values.items():
            problem = self._problem(t_s, name, raw)
            if problem is None:
                kept[name] = float(raw)
                continue
            self.dropped += 1
            dropped.append(f"{name}: {problem}")
            kind = problem.split(" ", 1)[0]
            if (name, kind) not in self._warned:
                self._warned.add((name, kind))
                logger.warning("temperature sensor %s ignored: %s", name, problem)
        return kept, dropped

    def _problem(self, t_s: float, name: str, raw: float) -> str | None:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return f"not a number ({raw!r})"
        if math.isnan(value) or math.isinf(value):
            return f"not a number ({value})"
        if value <= LOWEST_C or value > HIGHEST_C:
            return f"out of range ({value:g} C; valid is above {LOWEST_C:g} and up to {HIGHEST_C:g})"
        if self.frozen_s is None:
            return None
        last = self._since.get(name)
        if last is None or last[0] != value or t_s < last[1]:
            self._since[name] = (value, t_s)
            return None
        if t_s - last[1] >= self.frozen_s:
            return f"frozen at {value:g} C for {t_s - last[1]:.0f} s"
        return None


def build_reading(
    t_s: float,
    values: Mapping[str, float],
    value_filter: ValueFilter,
    *,
    deciding: Callable[[str], bool] | None = None,
    choose: Callable[[Mapping[str, float]], Iterable[str]] | None = None,
    combine: Callable[[Iterable[float]], float] = mean,
    pressure: int | None = None,
) -> Reading:
    """A Reading from raw values: drop the faulty ones, then combine the deciding sensors.

    Args:
        t_s: the sample's timestamp in seconds.
        values: raw temperatures by sensor name.
        value_filter: the source's filter (it remembers values to spot stuck sensors).
        deciding: which sensor names the deciding value uses; all of them when None, or when
            none of the valid sensors matches (a partial reading beats no reading).
        choose: instead of ``deciding``, the names of the valid sensors the deciding value uses,
            picked from all of them at once (a preference between sensor families). Strict:
            when it picks none, the reading has no deciding value (``temp_c`` None), because
            an average of other sensors would not mean what the thresholds mean.
        combine: how the deciding sensors become one value (the mean by default).
        pressure: the OS's thermal pressure level, if the source has one.
    """
    if deciding is not None and choose is not None:
        raise ValueError("give build_reading either deciding or choose, not both")
    kept, dropped = value_filter.clean(t_s, values)
    temp_c = hottest_c = hottest_name = None
    if kept:
        if choose is not None:
            chosen = [kept[name] for name in choose(kept)]
        else:
            chosen = [v for k, v in kept.items() if deciding is None or deciding(k)] or list(kept.values())
        temp_c = float(combine(chosen)) if chosen else None
        hottest_name = max(kept, key=kept.__getitem__)
        hottest_c = kept[hottest_name]
    return Reading(
        t_s=t_s,
        sensors=kept,
        temp_c=temp_c,
        hottest_c=hottest_c,
        hottest_name=hottest_name,
        pressure=pressure,
        dropped=tuple(dropped),
    )
