"""IC and Rank IC on a small hand-computed panel."""

import math

import numpy as np
import pytest

from fintrain.evaluate.ic import daily_ic, ic_summary


def test_ic_and_rank_ic_hand_computed():
    dates = np.repeat([1, 2, 3, 4, 5], 3)
    scores = np.array([1, 2, 3, 1, 2, 3, 1, 2, 3, 5, 5, 5, 1, 2, 3], dtype=float)
    rets = np.array([0.01, 0.02, 0.03,   # in step: IC = Rank IC = 1
                     0.03, 0.01, 0.02,   # deviations (-1, 0, 1) x (0.01, -0.01, 0): IC = Rank IC = -0.5
                     0.01, 0.05, 0.02,   # IC = 0.01 / sqrt(2 x 0.0026/3) = sqrt(3/52); ranks 1,3,2: 0.5
                     0.01, 0.02, 0.03,   # scores do not vary: no correlation that day
                     0.02, 0.02, 0.02])  # returns do not vary: none either
    daily = daily_ic(dates, scores, rets)
    np.testing.assert_allclose(daily["ic"].to_numpy()[:3], [1.0, -0.5, math.sqrt(3 / 52)])
    np.testing.assert_allclose(daily["rank_ic"].to_numpy()[:3], [1.0, -0.5, 0.5])
    assert daily["ic"][3] is None and daily["rank_ic"][4] is None
    s = ic_summary(dates, scores, rets)
    ic = np.array([1.0, -0.5, math.sqrt(3 / 52)])
    assert s["days"] == 3
    assert s["ic"] == pytest.approx(ic.mean()) and s["ic_std"] == pytest.approx(ic.std(ddof=1))
    assert s["icir"] == pytest.approx(ic.mean() / ic.std(ddof=1))
    rank = np.array([1.0, -0.5, 0.5])
    assert s["rank_ic"] == pytest.approx(rank.mean()) and s["rank_icir"] == pytest.approx(rank.mean() / rank.std(ddof=1))


def test_a_date_with_one_ticker_has_no_ic():
    daily = daily_ic(np.array([1, 2, 2]), np.array([0.3, 0.1, 0.2]), np.array([0.01, 0.0, 0.02]))
    assert daily["ic"][0] is None and daily["ic"][1] == pytest.approx(1.0)
