"""Regenerate the synthetic sample traces in this folder (deterministic: seeded noise).

    python examples/thermal/make_traces.py

Each trace is a piecewise-linear temperature profile plus +/-0.4 C of seeded noise, sampled
every 2 s, in the format ``replay:`` reads (``t_s,temp_c,pressure``).
"""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (t_s, temp_c) corners of each profile; values in between are interpolated linearly.
PROFILES = {
    # Load starts, the die warms past the 85 C warning line, sits at ~92 C long enough to pause
    # a run (dwell 30 s), then cools below the 80 C resume line and settles.
    "rise_to_92.csv": [(0, 55), (60, 78), (150, 92), (270, 92), (420, 66), (600, 65)],
    # The same start, but the die keeps climbing past the 95 C critical line to ~97 C: a run
    # pauses in the warning band, then stops (exit 3) once the smoothed value stays above 95 C.
    "critical_97.csv": [(0, 55), (60, 80), (150, 97), (300, 97), (450, 70), (600, 68)],
}
STEP_S = 2
NOISE_C = 0.4


def value_at(profile: list[tuple[float, float]], t: float) -> float:
    """Linear interpolation between the profile's corners."""
    for (t0, v0), (t1, v1) in zip(profile, profile[1:]):
        if t0 <= t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return profile[-1][1]


def main() -> None:
    for name, profile in PROFILES.items():
        rng = random.Random(name)
        lines = ["t_s,temp_c,pressure"]
        for t in range(0, profile[-1][0] + 1, STEP_S):
            temp = value_at(profile, t) + rng.uniform(-NOISE_C, NOISE_C)
            lines.append(f"{t},{temp:.2f},")
        (HERE / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {name}: {len(lines) - 1} samples, peak {max(v for _, v in profile)} C")


if __name__ == "__main__":
    main()
