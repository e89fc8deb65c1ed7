"""The seam between hardware and policy: a sensor is an object with ``read()`` and ``close()``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fintrain.thermal.reading import Reading


@runtime_checkable
class Sensor(Protocol):
    """A temperature source.

    ``read()`` returns a Reading, or None when the source gave nothing this time; it may also
    raise, which the monitor treats as no reading. Sources also carry ``name`` (for display),
    ``problem`` (why the last read gave no temperature, or None) and ``dropped`` (how many
    faulty values they have thrown away); the monitor reads them with ``getattr`` so a test
    double needs only ``read`` and ``close``.
    """

    def read(self) -> Reading | None:
        """One sample, or None."""
        ...

    def close(self) -> None:
        """Release what the source holds (processes, handles)."""
        ...


class NoSensor:
    """A source that gives no reading, and says why (no sensor on this machine, for one)."""

    dropped = 0

    def __init__(self, reason: str, name: str = "none"):
        self.name = name
        self.reason = reason
        self.problem = reason

    def read(self) -> Reading | None:
        """Always None: there is nothing to read."""
        return None

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"NoSensor({self.reason!r})"
