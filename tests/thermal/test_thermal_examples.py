"""The sample traces in examples/thermal, replayed through the monitor under the default policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from fintrain.config import ThermalConfig
from fintrain.thermal import ReplaySensor, ThermalMonitor, read_trace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "thermal"


def replay(name: str, clock, speed: float = 20.0, interval_s: float = 0.1, seconds: float = 40.0):
    """Sample the trace every interval_s of fake real time; return the statuses."""
    sensor = ReplaySensor(read_trace(EXAMPLES / name), speed=speed, clock=clock)
    monitor = ThermalMonitor(ThermalConfig(interval_s=interval_s), sensor, clock=clock)
    statuses = []
    for _ in range(int(seconds / interval_s)):
        statuses.append(monitor.sample_once())
        clock.advance(interval_s)
    return statuses


def test_readme_says_the_traces_are_synthetic():
    assert "synthetic" in (EXAMPLES / "README.md").read_text().lower()


def test_rise_to_92_pauses_once_and_resumes(clock):
    statuses = replay("rise_to_92.csv", clock)
    actions = [s.action for s in statuses]
    assert "stop" not in actions
    assert statuses[-1].pauses == 1
    assert actions[-1] == "run"
    assert 90 <= statuses[-1].temp_max_c <= 93
    # The pause ends only once the smoothed value is at or below 80 C.
    resume = next(i for i in range(1, len(statuses)) if actions[i - 1] == "pause" and actions[i] == "run")
    assert statuses[resume].smoothed_c <= 80
    # 15 minutes is far away: the pause is a few minutes of trace time.
    assert 60 < statuses[-1].paused_total_s < 300


def test_critical_97_stops(clock):
    statuses = replay("critical_97.csv", clock)
    actions = [s.action for s in statuses]
    assert "stop" in actions
    stop = actions.index("stop")
    assert "pause" in actions[:stop]  # it paused in the warning band first
    assert "critical" in statuses[stop].reason
    assert statuses[stop].smoothed_c > 95


@pytest.mark.parametrize("speed", [5.0, 50.0])
def test_the_speed_does_not_change_the_outcome(clock, speed):
    statuses = replay("rise_to_92.csv", clock, speed=speed, seconds=700 / speed)
    assert statuses[-1].pauses == 1 and statuses[-1].action == "run"
