"""Fakes shared by the thermal tests: a settable clock, a scripted sensor, readings."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from fintrain.thermal import Reading


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class ScriptedSensor:
    """Returns the given readings in order (an Exception instance is raised instead)."""

    name = "scripted"

    def __init__(self, items: Iterable[Reading | None | Exception]):
        self.items = list(items)
        self.reads = 0
        self.closed = False
        self.problem = None
        self.dropped = 0

    def read(self) -> Reading | None:
        item = self.items[min(self.reads, len(self.items) - 1)]
        self.reads += 1
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


def reading(t: float, temp: float | None, pressure: int | None = None) -> Reading:
    """A one-sensor reading."""
    sensors = {} if temp is None else {"die": temp}
    return Reading(t_s=t, sensors=sensors, temp_c=temp, hottest_c=temp,
                   hottest_name=None if temp is None else "die", pressure=pressure)


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 0 that the test moves by hand."""
    return FakeClock()


@pytest.fixture
def make_reading():
    """The ``reading(t, temp, pressure=None)`` helper."""
    return reading


@pytest.fixture
def scripted():
    """The ScriptedSensor class."""
    return ScriptedSensor
