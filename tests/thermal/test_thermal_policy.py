"""The pause/resume/stop policy, driven reading by reading on the readings' own timestamps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fintrain.config import ThermalConfig
from fintrain.thermal import Policy, Reading, band_of


def reading(t: float, temp: float | None, pressure: int | None = None) -> Reading:
    """A one-sensor reading."""
    sensors = {} if temp is None else {"die": temp}
    return Reading(t_s=t, sensors=sensors, temp_c=temp, hottest_c=temp, pressure=pressure)


def run(policy: Policy, temps, interval: float = 1.0, pressures=None, start: float = 0.0):
    """Feed one reading per interval; return the action after each and the final state."""
    state = policy.initial()
    actions = []
    for i, temp in enumerate(temps):
        t = start + i * interval
        level = None if pressures is None else pressures[i]
        r = None if temp == "missing" else reading(t, temp, level)
        state, action = policy.step(state, r, t)
        actions.append(action)
    return actions, state


@pytest.mark.parametrize(
    ("temp", "band"),
    [(69.99, "normal"), (70.0, "acceptable"), (84.99, "acceptable"), (85.0, "warning"),
     (95.0, "warning"), (95.01, "critical"), (None, "no reading")],
)
def test_band_edges_at_70_85_95(temp, band):
    assert band_of(temp, ThermalConfig()) == band


def test_value_exactly_at_85_counts_as_warning_and_pauses_after_dwell():
    actions, state = run(Policy(ThermalConfig(smoothing_s=0, dwell_s=10)), [85.0] * 12)
    assert actions[:10] == ["run"] * 10  # hot for 0..9 s
    assert actions[10] == "pause"  # 10 s in the warning band
    assert state.pauses == 1


def test_value_exactly_at_95_does_not_stop():
    actions, _ = run(Policy(ThermalConfig(smoothing_s=0, dwell_s=1000)), [95.0] * 30)
    assert "stop" not in actions


def test_short_spike_does_not_pause():
    temps = [60.0] * 20 + [99.0] * 3 + [60.0] * 60
    actions, state = run(Policy(ThermalConfig()), temps)
    assert set(actions) == {"run"}
    assert state.pauses == 0
    assert state.temp_max_c == 99.0


def test_single_hot_sensor_second_is_smoothed_away():
    # One reading at 100 C among 80s: the 5 s average stays under 85.
    temps = [80.0] * 10 + [100.0] + [80.0] * 10
    actions, state = run(Policy(ThermalConfig(dwell_s=0)), temps)
    assert set(actions) == {"run"}


def test_sustained_heat_pauses_once():
    actions, state = run(Policy(ThermalConfig()), [60.0] * 5 + [90.0] * 200)
    assert state.pauses == 1
    first = actions.index("pause")
    # Smoothed crosses 85 a few seconds into the heat, then 30 s of dwell.
    assert 5 + 30 <= first <= 5 + 30 + 5
    assert all(a == "pause" for a in actions[first:])
    assert state.seq == 1


def test_no_flapping_around_the_thresholds():
    # Oscillating between 83 and 87 every second: smoothed stays at ~85; once paused, the run
    # must not resume until it is at or below 80.
    temps = [83.0, 87.0] * 100 + [78.0] * 20
    actions, state = run(Policy(ThermalConfig()), temps)
    transitions = sum(1 for a, b in zip(actions, actions[1:]) if a != b)
    assert transitions <= 2  # at most one pause and one resume
    assert actions[-1] == "run"


def test_resumes_at_or_below_resume_c_only():
    policy = Policy(ThermalConfig(smoothing_s=0, dwell_s=0, resume_c=80))
    actions, _ = run(policy, [90.0, 85.0, 80.1, 80.05])
    assert actions == ["pause"] * 4
    actions, state = run(policy, [90.0, 84.0, 80.0])
    assert actions == ["pause", "pause", "run"]
    assert state.seq == 2  # one pause, one resume
    assert state.paused_total_s == pytest.approx(2.0)
    assert "resumed" in state.reason


def test_pause_then_resume_then_pause_again_counts_two_pauses():
    policy = Policy(ThermalConfig(smoothing_s=0, dwell_s=5))
    temps = [90.0] * 10 + [70.0] * 5 + [90.0] * 10
    actions, state = run(policy, temps)
    assert state.pauses == 2
    assert state.seq == 3
    assert actions[-1] == "pause"


def test_critical_stops_after_critical_dwell():
    policy = Policy(ThermalConfig(smoothing_s=0, dwell_s=1000, critical_dwell_s=3))
    actions, state = run(policy, [70.0, 96.0, 96.0, 96.0, 96.0, 70.0, 70.0])
    assert actions == ["run", "run", "run", "run", "stop", "stop", "stop"]
    assert state.action == "stop"
    assert "critical" in state.reason


def test_critical_spike_shorter_than_critical_dwell_does_not_stop():
    policy = Policy(ThermalConfig(smoothing_s=0, dwell_s=1000, critical_dwell_s=3))
    actions, _ = run(policy, [96.0, 96.0, 90.0, 96.0, 96.0, 90.0])
    assert "stop" not in actions


def test_stop_is_final():
    policy = Policy(ThermalConfig(smoothing_s=0, critical_dwell_s=0))
    actions, state = run(policy, [99.0] + [50.0] * 10)
    assert actions == ["stop"] * 11
    assert state.seq == 1


def test_pressure_trapping_stops_at_once():
    policy = Policy(ThermalConfig())
    actions, state = run(policy, [60.0, 60.0, 60.0], pressures=[0, 1, 3])
    assert actions == ["run", "run", "stop"]
    assert "trapping" in state.reason


def test_pressure_heavy_is_treated_like_the_warning_band():
    policy = Policy(ThermalConfig(dwell_s=10))
    temps = [70.0] * 30
    pressures = [2] * 20 + [0] * 10
    actions, state = run(policy, temps, pressures=pressures)
    assert actions[9] == "run" and actions[10] == "pause"
    # Heavy pressure keeps the pause even though 70 C is below resume_c...
    assert actions[19] == "pause"
    # ...and it ends when the OS says the pressure is gone.
    assert actions[20] == "run"


def test_max_total_pause_stops():
    policy = Policy(ThermalConfig(smoothing_s=0, dwell_s=0, max_pause_s=100))
    actions, state = run(policy, [90.0] * 150)
    assert actions[0] == "pause"
    assert actions[99] == "pause" and actions[100] == "stop"
    assert "max_pause_s" in state.reason
    assert state.paused_total_s == pytest.approx(100)


def test_max_pause_adds_up_over_several_pauses():
    policy = Policy(ThermalConfig(smoothing_s=0, dwell_s=0, max_pause_s=30))
    temps = ([90.0] * 20 + [70.0] * 5) * 3
    actions, state = run(policy, temps)
    assert state.pauses == 2
    assert actions[-1] == "stop"


def test_no_reading_while_running_keeps_running():
    actions, state = run(Policy(ThermalConfig()), ["missing"] * 10)
    assert set(actions) == {"run"}
    assert state.band == "no reading"
    assert state.smoothed_c is None


def test_no_reading_is_never_normal_even_after_a_cool_reading():
    policy = Policy(ThermalConfig())
    actions, state = run(policy, [50.0, 50.0, "missing"])
    assert state.band == "no reading"


def test_no_reading_while_paused_stays_paused():
    policy = Policy(ThermalConfig(smoothing_s=0, dwell_s=0))
    actions, state = run(policy, [90.0] + ["missing"] * 20)
    assert set(actions) == {"pause"}
    assert "no reading" in state.reason


def test_durations_follow_reading_timestamps_not_the_number_of_readings():
    cfg = ThermalConfig(smoothing_s=5, dwell_s=30)
    # The same heat sampled every 10 s instead of every 1 s: the pause comes at the same time.
    slow, _ = run(Policy(cfg), [90.0] * 10, interval=10.0)
    assert slow.index("pause") == 3  # t=30 s
    fast, _ = run(Policy(cfg), [90.0] * 100, interval=1.0)
    assert fast.index("pause") == 30


def test_a_compressed_trace_decides_like_the_real_time_one():
    # Timestamps are the trace's own, so the sampling rate does not change the decisions.
    cfg = ThermalConfig()
    temps = [60 + min(i, 60) * 0.5 for i in range(200)] + [70.0] * 100
    dense, dense_state = run(Policy(cfg), temps, interval=1.0)
    sparse, sparse_state = run(Policy(cfg), temps[::4], interval=4.0)
    assert dense_state.pauses == sparse_state.pauses == 1
    assert abs(dense.index("pause") - 4 * sparse.index("pause")) <= 8


def test_trend_reports_rising_and_falling():
    policy = Policy(ThermalConfig())
    _, rising = run(policy, [60 + i for i in range(20)])
    _, falling = run(policy, [80 - i for i in range(20)])
    _, steady = run(policy, [70.0] * 20)
    assert (rising.trend, falling.trend, steady.trend) == ("rising", "falling", "steady")


temperature = st.one_of(st.floats(min_value=20, max_value=110, allow_nan=False), st.just("missing"))


@settings(max_examples=150)
@given(st.lists(temperature, min_size=1, max_size=120))
def test_invariants_hold_for_any_sequence(temps):
    cfg = ThermalConfig(smoothing_s=3, dwell_s=5, critical_dwell_s=2, max_pause_s=60)
    policy = Policy(cfg)
    state = policy.initial()
    previous = "run"
    for i, temp in enumerate(temps):
        r = None if temp == "missing" else reading(float(i), temp)
        state, action = policy.step(state, r, float(i))
        if previous == "stop":
            assert action == "stop"
        if previous == "pause" and action == "run":
            # A resume needs a smoothed value at or below resume_c.
            assert state.smoothed_c is not None and state.smoothed_c <= cfg.resume_c
        if previous == "run" and action == "pause":
            assert state.smoothed_c is not None and state.smoothed_c >= cfg.warning_c
        assert state.paused_total_s <= cfg.max_pause_s + 1e-9 or action == "stop"
        previous = action


@settings(max_examples=100)
@given(st.lists(st.floats(min_value=20, max_value=84.9), min_size=1, max_size=100))
def test_never_pauses_below_the_warning_band(temps):
    actions, _ = run(Policy(ThermalConfig(dwell_s=0)), temps)
    assert set(actions) == {"run"}


def test_pressure_only_source_pauses_on_heavy_and_resumes_when_it_eases():
    policy = Policy(ThermalConfig(dwell_s=5))
    state = policy.initial()
    actions = []
    for t in range(20):
        level = 2 if t < 10 else 1
        state, action = policy.step(state, reading(float(t), None, level), float(t))
        actions.append(action)
    assert actions[4] == "run" and actions[5] == "pause"
    assert actions[9] == "pause" and actions[10] == "run"
    assert state.pauses == 1
    assert state.band == "no reading"
