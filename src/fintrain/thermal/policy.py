"""The pause/resume/stop policy: a pure state machine ``(state, reading, now) -> (state, action)``.

Decisions use the deciding temperature smoothed over ``smoothing_s`` seconds, because a die
sensor swings by several degrees from one second to the next:

- bands: normal below ``acceptable_c``, acceptable up to ``warning_c``, warning up to and
  including ``critical_c``, critical above it (70 is acceptable, 85 and 95 are warning);
- pause after ``dwell_s`` seconds in the warning band or hotter (thermal pressure level heavy
  counts as the warning band), so a short spike does nothing;
- resume only at or below ``resume_c``, well under the pause level, so a run does not flap;
- stop when the smoothed value stays above ``critical_c`` for ``critical_dwell_s`` seconds, at
  once on pressure level trapping or worse, and when the pauses add up to ``max_pause_s``;
- no reading is shown as such, never as normal: a running loop goes on (the monitor warns),
  a paused one stays paused until the temperature or the OS's pressure level says it cooled.

Every duration is measured on the readings' own timestamps (``now``), never on a wall clock,
so a replay at N times speed compresses smoothing, dwell and the pause limit alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from fintrain.config import ThermalConfig
from fintrain.thermal.reading import PRESSURE_HEAVY, PRESSURE_TRAPPING, Reading, pressure_name

Action = Literal["run", "pause", "stop"]
Band = Literal["normal", "acceptable", "warning", "critical", "no reading"]
Trend = Literal["rising", "falling", "steady"]

# The trend compares the slope of recent readings with this rate (3 C per minute): slower
# drift is noise on a die sensor's average.
TREND_C_PER_S = 0.05
TREND_MIN_WINDOW_S = 15.0
TREND_MIN_SAMPLES = 3


def band_of(temp_c: float | None, cfg: ThermalConfig) -> Band:
    """The band a (smoothed) temperature falls in."""
    if temp_c is None:
        return "no reading"
    if temp_c < cfg.acceptable_c:
        return "normal"
    if temp_c < cfg.warning_c:
        return "acceptable"
    if temp_c <= cfg.critical_c:
        return "warning"
    return "critical"


@dataclass(frozen=True)
class PolicyState:
    """Everything the policy remembers between readings (immutable; each step returns a new one).

    Attributes:
        action: the current decision.
        samples: recent (t_s, temp_c) pairs, enough for smoothing and the trend.
        smoothed_c: the smoothed deciding value at the last step (None: no reading).
        band: the band of ``smoothed_c``, or "no reading".
        trend: rising, falling or steady over the last ``trend_window_s``.
        hot_since: when the smoothed value (or pressure heavy) entered the warning band.
        critical_since: when it went above ``critical_c``.
        paused_at: when the current pause began (None while running).
        paused_done_s: total length of the pauses that have ended.
        now: the time of the last step.
        temp_max_c: the highest deciding value seen.
        pauses: how many pauses have begun.
        seq: bumped at every change of action, so a caller can tell a new pause from an old one.
        reason: why the policy is where it is, in words.
    """

    action: Action = "run"
    samples: tuple[tuple[float, float], ...] = ()
    smoothed_c: float | None = None
    band: Band = "no reading"
    trend: Trend = "steady"
    hot_since: float | None = None
    critical_since: float | None = None
    paused_at: float | None = None
    paused_done_s: float = 0.0
    now: float | None = None
    temp_max_c: float | None = None
    pauses: int = 0
    seq: int = 0
    reason: str = "no reading yet"

    @property
    def paused_s(self) -> float:
        """Length of the current pause so far (0 while running)."""
        if self.paused_at is None or self.now is None:
            return 0.0
        return max(0.0, self.now - self.paused_at)

    @property
    def paused_total_s(self) -> float:
        """All pauses so far, the current one included."""
        return self.paused_done_s + self.paused_s


class Policy:
    """The thermal policy for one configuration; ``step`` is a pure function of its arguments."""

    def __init__(self, cfg: ThermalConfig):
        self.cfg = cfg
        self.trend_window_s = max(TREND_MIN_WINDOW_S, 3 * cfg.smoothing_s)
        self.history_s = max(cfg.smoothing_s, self.trend_window_s)

    def initial(self) -> PolicyState:
        """The state before the first reading: running, nothing known."""
        return PolicyState()

    def step(self, state: PolicyState, reading: Reading | None, now: float) -> tuple[PolicyState, Action]:
        """Take one reading (or its absence) at time ``now`` and decide.

        Args:
            state: the state the previous step returned.
            reading: the new sample, or None when the source gave nothing.
            now: the time of this step on the readings' clock (the reading's ``t_s`` when
                there is one).

        Returns:
            The new state and its action: "run", "pause" or "stop" (stop is final).
        """
        cfg = self.cfg
        temp = reading.temp_c if reading is not None else None
        pressure = reading.pressure if reading is not None else None

        # Readings older than the history window, or from the future (a clock that went
        # back), no longer describe the machine; but the last few are kept whatever their age,
        # so that sparse sampling (a replay at high speed) still shows a trend.
        kept = [(t, v) for t, v in state.samples if t <= now]
        samples = [(t, v) for i, (t, v) in enumerate(kept)
                   if t > now - self.history_s or i >= len(kept) - TREND_MIN_SAMPLES + 1]
        if temp is not None:
            samples.append((now, temp))
        smoothed = None
        if temp is not None:
            window = [v for t, v in samples if t > now - cfg.smoothing_s] or [temp]
            smoothed = sum(window) / len(window)
        band = band_of(smoothed, cfg)
        temp_max = state.temp_max_c if temp is None else max(temp, state.temp_max_c or temp)
        new = replace(
            state,
            samples=tuple(samples),
            smoothed_c=smoothed,
            band=band,
            trend=self._trend(samples, now),
            now=now,
            temp_max_c=temp_max,
        )
        if state.action == "stop":
            return new, "stop"

        heavy = pressure is not None and pressure >= PRESSURE_HEAVY
        hot = heavy or (smoothed is not None and smoothed >= cfg.warning_c)
        critical = smoothed is not None and smoothed > cfg.critical_c
        new = replace(
            new,
            hot_since=(state.hot_since if state.hot_since is not None else now) if hot else None,
            critical_since=(state.critical_since if state.critical_since is not None else now)
            if critical
            else None,
        )

        if pressure is not None and pressure >= PRESSURE_TRAPPING:
            return self._stop(new, f"the OS reports thermal pressure {pressure_name(pressure)}")
        if critical and now - new.critical_since >= cfg.critical_dwell_s:
            return self._stop(
                new,
                f"{smoothed:.1f} C above critical {cfg.critical_c:g} C for "
                f"{now - new.critical_since:.0f} s",
            )

        if state.action == "pause":
            if new.paused_total_s >= cfg.max_pause_s:
                return self._stop(
                    new,
                    f"paused {new.paused_total_s:.0f} s in total, the limit is "
                    f"max_pause_s={cfg.max_pause_s:g}",
                )
            if self._cooled(smoothed, pressure):
                done = new.paused_done_s + new.paused_s
                what = (
                    f"{smoothed:.1f} C, at or below resume_c={cfg.resume_c:g}"
                    if smoothed is not None
                    else f"no temperature, thermal pressure back to {pressure_name(pressure)}"
                )
                resumed = replace(
                    new,
                    action="run",
                    paused_at=None,
                    paused_done_s=done,
                    hot_since=None,
                    seq=state.seq + 1,
                    reason=f"resumed: {what}",
                )
                return resumed, "run"
            return replace(new, reason=self._pause_reason(new, smoothed, pressure)), "pause"

        if hot and now - new.hot_since >= cfg.dwell_s:
            cause = (
                f"{smoothed:.1f} C in the warning band (>= {cfg.warning_c:g} C)"
                if smoothed is not None and smoothed >= cfg.warning_c
                else f"thermal pressure {pressure_name(pressure)}"
            )
            paused = replace(
                new,
                action="pause",
                paused_at=now,
                pauses=state.pauses + 1,
                seq=state.seq + 1,
                reason=f"paused: {cause} for {now - new.hot_since:.0f} s",
            )
            return paused, "pause"
        return replace(new, reason=self._run_reason(new, smoothed, pressure, hot)), "run"

    def _cooled(self, smoothed: float | None, pressure: int | None) -> bool:
        """May a pause end? On temperature when there is one, else on the OS's pressure level."""
        if pressure is not None and pressure >= PRESSURE_HEAVY:
            return False
        if smoothed is not None:
            return smoothed <= self.cfg.resume_c
        return pressure is not None

    def _stop(self, state: PolicyState, why: str) -> tuple[PolicyState, Action]:
        done = state.paused_done_s + state.paused_s
        stopped = replace(
            state, action="stop", paused_at=None, paused_done_s=done, seq=state.seq + 1,
            reason=f"stopped: {why}",
        )
        return stopped, "stop"

    def _pause_reason(self, state: PolicyState, smoothed: float | None, pressure: int | None) -> str:
        if smoothed is None and pressure is None:
            return f"paused {state.paused_s:.0f} s: no reading, waiting to see it cool"
        now_c = f"{smoothed:.1f} C" if smoothed is not None else f"pressure {pressure_name(pressure)}"
        return f"paused {state.paused_s:.0f} s: {now_c}, {state.trend}; resumes at {self.cfg.resume_c:g} C"

    def _run_reason(self, state: PolicyState, smoothed: float | None, pressure: int | None, hot: bool) -> str:
        if smoothed is None and pressure is None:
            return "no reading"
        if hot:
            return f"hot for {state.now - state.hot_since:.0f} s of dwell_s={self.cfg.dwell_s:g}"
        if smoothed is None:
            return f"no temperature; pressure {pressure_name(pressure)}"
        return f"{smoothed:.1f} C {state.band}"

    def _trend(self, samples: list[tuple[float, float]], now: float) -> Trend:
        """Least-squares slope of the recent readings against the trend threshold."""
        recent = [(t, v) for t, v in samples if t > now - self.trend_window_s]
        if len(recent) < TREND_MIN_SAMPLES:
            recent = samples[-TREND_MIN_SAMPLES:]
        if len(recent) < 2:
            return "steady"
        t_mean = sum(t for t, _ in recent) / len(recent)
        v_mean = sum(v for _, v in recent) / len(recent)
        var = sum((t - t_mean) ** 2 for t, _ in recent)
        if var == 0:
            return "steady"
        slope = sum((t - t_mean) * (v - v_mean) for t, v in recent) / var
        if slope > TREND_C_PER_S:
            return "rising"
        if slope < -TREND_C_PER_S:
            return "falling"
        return "steady"
