"""``thermal-watch`` as a library: sample on a schedule and keep a history.

``watch()`` yields one ``ThermalStatus`` per interval (the monitor's policy runs too, so the view
shows what training would do); ``WatchView`` keeps the recent history, minimum and maximum, and
writes one plain line per sample. The Rich live view is drawn by ``fintrain.cli.thermal``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator

from fintrain.config import ThermalConfig
from fintrain.thermal.monitor import ThermalMonitor, ThermalStatus
from fintrain.thermal.reading import pressure_name
from fintrain.thermal.sensor import Sensor

def watch(
    cfg: ThermalConfig,
    sensor: Sensor,
    duration_s: float | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[ThermalStatus]:
    """Sample ``sensor`` every ``cfg.interval_s`` seconds, for ``duration_s`` (None: forever).

    Samples fall at 0, interval, 2 x interval, ... up to and including ``duration_s``. The
    sensor is closed when the iteration ends, however it ends.
    """
    monitor = ThermalMonitor(cfg, sensor, clock=clock)
    start = clock()
    k = 0
    try:
        while True:
            yield monitor.sample_once()
            k += 1
            due = k * cfg.interval_s
            if duration_s is not None and due > duration_s + 1e-9:
                return
            sleep(max(0.0, start + due - clock()))
    finally:
        monitor.stop()


class WatchView:
    """The state of the thermal-watch display: recent history, minimum and maximum.

    Args:
        cfg: thresholds for the colours.
        window_s: how much history the sparkline covers (on the readings' clock).
        width: characters in the sparkline.
    """

    def __init__(self, cfg: ThermalConfig, window_s: float = 300.0, width: int = 60):
        self.cfg = cfg
        self.window_s = window_s
        self.width = width
        self.history: deque[tuple[float, float]] = deque()
        self.min_c: float | None = None
        self.max_c: float | None = None
        self.t0: float | None = None
        self.latest: ThermalStatus | None = None

    def update(self, status: ThermalStatus) -> None:
        """Add one sample."""
        self.latest = status
        if status.t_s is not None and self.t0 is None:
            self.t0 = status.t_s
        if status.temp_c is None or status.t_s is None:
            return
        self.history.append((status.t_s, status.temp_c))
        while self.history and self.history[0][0] < status.t_s - self.window_s:
            self.history.popleft()
        self.min_c = status.temp_c if self.min_c is None else min(self.min_c, status.temp_c)
        self.max_c = status.temp_c if self.max_c is None else max(self.max_c, status.temp_c)

    def elapsed_s(self, status: ThermalStatus) -> float:
        """Seconds since the first sample, on the readings' clock."""
        if status.t_s is None or self.t0 is None:
            return 0.0
        return status.t_s - self.t0

    def line(self, status: ThermalStatus) -> str:
        """One plain line for a sample (no colours; for logs and pipes)."""
        parts = [f"{self.elapsed_s(status):8.1f}s"]
        if status.temp_c is None:
            parts.append("no reading")
        else:
            parts.append(f"{status.temp_c:5.1f} C {status.band}")
            parts.append(f"smoothed {status.smoothed_c:.1f} {status.trend}")
            if status.hottest_name is not None and status.hottest_c is not None:
                parts.append(f"hottest {status.hottest_c:.1f} C {status.hottest_name}")
        if status.pressure is not None:
            parts.append(f"pressure {pressure_name(status.pressure)}")
        parts.append(f"policy {status.action}")
        if status.action != "run" or status.temp_c is None:
            parts.append(f"({status.reason})")
        return "  ".join(parts)

    def spark_values(self, now: float) -> list[float | None]:
        """The history averaged into ``width`` time buckets ending at ``now``."""
        start = now - self.window_s
        buckets: list[list[float]] = [[] for _ in range(self.width)]
        for t, v in self.history:
            i = int((t - start) / self.window_s * self.width)
            buckets[min(max(i, 0), self.width - 1)].append(v)
        values = [sum(b) / len(b) if b else None for b in buckets]
        # Sampling sparser than the buckets leaves holes between samples: hold the last value
        # across them, so the line only has gaps before the first sample.
        last = None
        for i, v in enumerate(values):
            if v is None:
                values[i] = last
            else:
                last = v
        return values
