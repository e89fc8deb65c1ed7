"""The thermal monitor: a background thread that samples a sensor and runs the policy.

The training loop asks ``status()`` once per step; that returns the latest ``ThermalStatus``
object the thread stored, so it costs an attribute read (no I/O, no lock). Tests and a loop that
wants determinism call ``sample_once()`` themselves instead of starting the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fintrain.config import ThermalConfig
from fintrain.errors import ThermalError
from fintrain.thermal.policy import Action, Band, Policy, PolicyState, Trend
from fintrain.thermal.reading import Reading, pressure_name
from fintrain.thermal.sensor import Sensor

logger = logging.getLogger(__name__)

# What a source with the OS's pressure level but no temperature protects against, said plainly.
PRESSURE_ONLY_WARNING = (
    "no temperature reading (%s); only the OS's thermal pressure level is watched: the "
    "temperature bands (acceptable_c, warning_c, critical_c) do not apply, training pauses only "
    "at pressure heavy and stops at trapping"
)


@dataclass(frozen=True)
class ThermalStatus:
    """What the monitor knows after its latest sample.

    Attributes:
        action: "run", "pause" or "stop" (stop is final: save a checkpoint and exit 3).
        band: "normal", "acceptable", "warning", "critical" or "no reading".
        temp_c: the latest deciding value (None: no reading).
        smoothed_c: the smoothed value the band and the decisions use.
        temp_max_c: the highest deciding value so far.
        hottest_c: the hottest single sensor in the latest reading.
        hottest_name: its name.
        pressure: the OS's thermal pressure level, where there is one.
        paused_s: length of the current pause (0 while running).
        paused_total_s: all pauses so far, the current one included.
        reason: why, in words ("paused 42 s: 91.0 C, falling; resumes at 80 C").
        trend: "rising", "falling" or "steady".
        seq: bumped at every change of action; a new pause has a new seq.
        pauses: pauses begun so far.
        samples: samples taken so far.
        dropped: faulty values the sensor has thrown away so far.
        t_s: the time of the latest sample on the readings' clock.
        sensors: every sensor's latest value by name.
        source: the sensor's name ("none" when monitoring is off).
    """

    action: Action = "run"
    band: Band = "no reading"
    temp_c: float | None = None
    smoothed_c: float | None = None
    temp_max_c: float | None = None
    hottest_c: float | None = None
    hottest_name: str | None = None
    pressure: int | None = None
    paused_s: float = 0.0
    paused_total_s: float = 0.0
    reason: str = "not started"
    trend: Trend = "steady"
    seq: int = 0
    pauses: int = 0
    samples: int = 0
    dropped: int = 0
    t_s: float | None = None
    sensors: Mapping[str, float] = field(default_factory=dict)
    source: str = "none"

    @property
    def has_reading(self) -> bool:
        """True when the latest sample carried a temperature or a pressure level."""
        return self.temp_c is not None or self.pressure is not None

    @property
    def has_temperature(self) -> bool:
        """True when the latest sample carried a deciding temperature (the bands apply)."""
        return self.temp_c is not None

    @property
    def pressure_only(self) -> bool:
        """True when the latest sample had the OS's pressure level but no temperature."""
        return self.temp_c is None and self.pressure is not None

    def describe(self) -> str:
        """One short line for a panel: 'paused 42 s, 91 C, falling' or '64 C normal, steady'."""
        temp = "no reading" if self.temp_c is None else f"{self.smoothed_c or self.temp_c:.0f} C"
        extra = f", pressure {pressure_name(self.pressure)}" if self.pressure else ""
        if self.action == "pause":
            return f"paused {self.paused_s:.0f} s, {temp}, {self.trend}{extra}"
        if self.action == "stop":
            return f"stopped: {self.reason.removeprefix('stopped: ')}"
        if self.pressure_only:
            return f"no temperature, pressure {pressure_name(self.pressure)} only (bands off)"
        if self.temp_c is None:
            return f"{temp}{extra}"
        return f"{temp} {self.band}, {self.trend}{extra}"


class ThermalMonitor:
    """Samples a sensor every ``cfg.interval_s`` on a daemon thread and keeps the decision.

    Args:
        cfg: the thermal section of the run configuration.
        sensor: what ``open_sensor`` returned (None: monitoring off, always "run").
        clock: monotonic clock; only used to carry time forward across samples without a
            reading (every other duration comes from the readings' own timestamps).

    The monitor owns the sensor: ``stop()`` closes it. Use as a context manager, or call
    ``start()`` and ``stop()``.
    """

    def __init__(self, cfg: ThermalConfig, sensor: Sensor | None, clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.sensor = sensor
        self.policy = Policy(cfg)
        self._clock = clock
        self._state: PolicyState = self.policy.initial()
        self._samples = 0
        self._last_reading_t: float | None = None
        self._last_reading_clock: float | None = None
        self._warned_no_reading = False
        self._closed = False
        source = "none" if sensor is None else getattr(sensor, "name", type(sensor).__name__)
        reason = "thermal monitoring is off" if sensor is None else "not started"
        self._status = ThermalStatus(reason=reason, source=source)
        self._lock = threading.Lock()  # one sample at a time (thread and sample_once)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> ThermalStatus:
        """The latest status (cheap: no I/O; safe to call every step)."""
        return self._status

    def sample_once(self) -> ThermalStatus:
        """Read the sensor once, run the policy, store and return the new status."""
        with self._lock:
            if self.sensor is None or self._closed:
                return self._status
            problem = None
            try:
                reading = self.sensor.read()
            except Exception as exc:  # a failing sensor is no reading, never a crash
                reading = None
                problem = f"sensor failed: {exc}"
            if problem is None and (reading is None or reading.temp_c is None):
                problem = getattr(self.sensor, "problem", None) or "the sensor gave no reading"
            now = self._timeline(reading)
            state, _ = self.policy.step(self._state, reading, now)
            self._state = state
            self._samples += 1
            self._warn(reading, problem)
            self._status = self._make_status(state, reading, problem)
            return self._status

    def _timeline(self, reading: Reading | None) -> float:
        """``now`` for the policy: the reading's time, or the last one carried forward."""
        clock_now = self._clock()
        if reading is not None:
            self._last_reading_t = reading.t_s
            self._last_reading_clock = clock_now
            return reading.t_s
        if self._last_reading_t is None:
            return clock_now
        return self._last_reading_t + (clock_now - self._last_reading_clock)

    def _warn(self, reading: Reading | None, problem: str | None) -> None:
        """One warning when readings stop, one note when they come back."""
        has_temp = reading is not None and reading.temp_c is not None
        if not has_temp and not self._warned_no_reading:
            self._warned_no_reading = True
            if reading is not None and reading.pressure is not None:
                logger.warning(PRESSURE_ONLY_WARNING, problem)
            else:
                logger.warning("no temperature reading (%s); no thermal protection until a reading "
                               "comes back", problem)
        elif has_temp and self._warned_no_reading:
            self._warned_no_reading = False
            logger.warning("temperature readings are back: %.1f C", reading.temp_c)

    def _make_status(self, state: PolicyState, reading: Reading | None, problem: str | None) -> ThermalStatus:
        reason = state.reason
        if (reading is None or reading.temp_c is None) and state.action == "run" and problem:
            reason = f"no reading: {problem}"
        return ThermalStatus(
            action=state.action,
            band=state.band,
            temp_c=reading.temp_c if reading is not None else None,
            smoothed_c=state.smoothed_c,
            temp_max_c=state.temp_max_c,
            hottest_c=reading.hottest_c if reading is not None else None,
            hottest_name=reading.hottest_name if reading is not None else None,
            pressure=reading.pressure if reading is not None else None,
            paused_s=state.paused_s,
            paused_total_s=state.paused_total_s,
            reason=reason,
            trend=state.trend,
            seq=state.seq,
            pauses=state.pauses,
            samples=self._samples,
            dropped=getattr(self.sensor, "dropped", 0),
            t_s=state.now,
            sensors=dict(reading.sensors) if reading is not None else {},
            source=getattr(self.sensor, "name", type(self.sensor).__name__),
        )

    def start(self) -> ThermalMonitor:
        """Take a first sample now, then keep sampling on a daemon thread.

        Raises:
            ThermalError: ``require_sensor`` is set and the first sample has no temperature (a
                pressure level alone does not count: the bands would never apply).
        """
        if self._thread is not None:
            return self
        status = self.sample_once()
        if self.cfg.require_sensor and not status.has_temperature:
            self.close_sensor()
            why = status.reason if self.sensor is not None else "the thermal source is none"
            if status.pressure_only:
                why = f"only the OS's thermal pressure level, {why}"
            raise ThermalError(
                f"thermal.require_sensor is set but there is no temperature reading ({why}); "
                "pick a source with --thermal-source, or unset require_sensor"
            )
        if self.sensor is None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="thermal-monitor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = self.cfg.interval_s
        next_due = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_due - time.monotonic())):
            self.sample_once()
            next_due += interval
            # After a slow read, skip the missed slots rather than sampling in a burst.
            next_due = max(next_due, time.monotonic())

    def stop(self) -> None:
        """Stop the thread and close the sensor (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.cfg.interval_s))
            self._thread = None
        self.close_sensor()

    def close_sensor(self) -> None:
        """Close the sensor once."""
        if self.sensor is not None and not self._closed:
            self._closed = True
            with self._lock:
                try:
                    self.sensor.close()
                except Exception as exc:  # closing must not mask the run's own outcome
                    logger.warning("closing the temperature sensor failed: %s", exc)

    def __enter__(self) -> ThermalMonitor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
