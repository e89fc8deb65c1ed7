"""Every a20/a50 feature against a direct reference written here from the textbook formula.

The references are plain NumPy loops over the whole history (real MSFT data); they are compared
with the built features on the rows the build keeps (after the tier's warm-up). Recursive
averages are seeded with the first value, as Polars does (TA-Lib seeds with an SMA; the two
agree once the seed has decayed, which is what the warm-up allows for).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from fintrain.features import build_features, feature_names

RTOL = 1e-8
ATOL = 1e-9


# --- reference implementations -----------------------------------------------------------------


def ema(x: np.ndarray, alpha: float) -> np.ndarray:
    """y_0 = first non-NaN x; y_t = (1 - alpha) y_{t-1} + alpha x_t. NaN before the first value."""
    out = np.full_like(x, np.nan)
    prev = np.nan
    for t, v in enumerate(x):
        if np.isnan(v):
            out[t] = prev
            continue
        prev = v if np.isnan(prev) else (1 - alpha) * prev + alpha * v
        out[t] = prev
    return out


def span(n: int) -> float:
    return 2.0 / (n + 1)


def rolling(x: np.ndarray, n: int, fn) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        window = x[t - n + 1 : t + 1]
        if not np.isnan(window).any():
            out[t] = fn(window)
    return out


def shift(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    out[n:] = x[:-n]
    return out


def div(num: np.ndarray, den: np.ndarray, fallback: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(den) > 1e-12, num / den, fallback)


def rsi(x: np.ndarray, n: int) -> np.ndarray:
    change = np.diff(x, prepend=np.nan)
    gain = ema(np.where(np.isnan(change), np.nan, np.maximum(change, 0)), 1 / n)
    loss = ema(np.where(np.isnan(change), np.nan, np.maximum(-change, 0)), 1 / n)
    return div(100 * gain, gain + loss, 50.0)


def stoch(x: np.ndarray, n: int) -> np.ndarray:
    lo = rolling(x, n, np.min)
    hi = rolling(x, n, np.max)
    return div(x - lo, hi - lo, 0.5)


def weekly(frame: pl.DataFrame, fn) -> np.ndarray:
    """fn over weekly closes; each day gets the value of the last week that ended before it."""
    dates = frame["date"].to_list()
    closes = frame["close"].to_numpy()
    mondays: list[dt.date] = []
    week_close: list[float] = []
    for d, c in zip(dates, closes, strict=True):
        monday = d - dt.timedelta(days=d.weekday())
        if not mondays or mondays[-1] != monday:
            mondays.append(monday)
            week_close.append(c)
        week_close[-1] = c
    values = fn(np.array(week_close))
    out = np.full(len(dates), np.nan)
    last_done = -1  # the last week whose Monday + 7 days is on or before the day
    for i, d in enumerate(dates):
        while last_done + 1 < len(mondays) and mondays[last_done + 1] + dt.timedelta(days=7) <= d:
            last_done += 1
        if last_done >= 0:
            out[i] = values[last_done]
    return out


def references(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    o, h, l, c, v = (frame[k].to_numpy().astype(float) for k in ("open", "high", "low", "close", "volume"))
    prev_c = shift(c, 1)
    ref: dict[str, np.ndarray] = {}
    for n in (9, 20, 50, 100, 200):
        ref[f"sma_ratio_{n}"] = c / rolling(c, n, np.mean) - 1
    for n in (9, 20, 50, 100):
        e1 = ema(c, span(n))
        ref[f"dema_ratio_{n}"] = c / (2 * e1 - ema(e1, span(n))) - 1
    ref["rsi_14"] = rsi(c, 14)
    ref["stoch_rsi_14"] = stoch(ref["rsi_14"], 14)
    ref["rsi_14_w"] = weekly(frame, lambda w: rsi(w, 14))
    ref["stoch_rsi_14_w"] = weekly(frame, lambda w: stoch(rsi(w, 14), 14))
    macd = ema(c, span(12)) - ema(c, span(26))
    ref["macd_rel"] = macd / c
    obv_change = np.sign(np.diff(c, prepend=np.nan)) * v
    ref["obv_z_20"] = div(
        obv_change - rolling(obv_change, 20, np.mean), rolling(obv_change, 20, lambda w: w.std(ddof=1)), 0.0
    )
    adl = np.cumsum(div((c - l) - (h - c), h - l, 0.0) * v)
    ref["ad_osc_rel"] = div(ema(adl, span(3)) - ema(adl, span(10)), rolling(v, 20, np.mean), 0.0)
    tr = np.maximum.reduce([h - l, np.abs(h - prev_c), np.abs(l - prev_c)])
    atr = ema(tr, 1 / 14)
    ref["atr_rel_14"] = atr / c
    up, down = np.diff(h, prepend=np.nan), -np.diff(l, prepend=np.nan)
    plus_dm = np.where(np.isnan(up), np.nan, np.where((up > down) & (up > 0), up, 0.0))
    minus_dm = np.where(np.isnan(up), np.nan, np.where((down > up) & (down > 0), down, 0.0))
    plus_di = div(100 * ema(plus_dm, 1 / 14), atr, 0.0)
    minus_di = div(100 * ema(minus_dm, 1 / 14), atr, 0.0)
    ref["adx_14"] = ema(div(100 * np.abs(plus_di - minus_di), plus_di + minus_di, 0.0), 1 / 14)
    mid = rolling(c, 20, np.mean)
    sd = rolling(c, 20, lambda w: w.std(ddof=0))
    ref["bb_pctb_20"] = div(c - (mid - 2 * sd), 4 * sd, 0.5)
    tp = (h + l + c) / 3
    ref["vwap_ratio_20"] = c / (rolling(tp * v, 20, np.sum) / rolling(v, 20, np.sum)) - 1

    r1 = np.log(c / prev_c)
    year = math.sqrt(252)
    for n in (1, 5, 21, 63, 252):
        ref[f"logret_{n}"] = np.log(c / shift(c, n))
    for n in (5, 21, 63):
        ref[f"rvol_{n}"] = rolling(r1, n, lambda w: w.std(ddof=1)) * year
    ref["parkinson_vol_21"] = np.sqrt(rolling(np.log(h / l) ** 2, 21, np.mean) / (4 * math.log(2))) * year
    gk = 0.5 * np.log(h / l) ** 2 - (2 * math.log(2) - 1) * np.log(c / o) ** 2
    ref["gk_vol_21"] = np.sqrt(np.maximum(rolling(gk, 21, np.mean), 0)) * year
    ref["gap_overnight"] = np.log(o / prev_c)
    ref["range_intraday"] = np.log(h / l)
    ref["close_location"] = div(c - l, h - l, 0.5)
    lv = np.log1p(v)
    ref["volume_z_20"] = div(lv - rolling(lv, 20, np.mean), rolling(lv, 20, lambda w: w.std(ddof=1)), 0.0)
    ref["volume_ratio_20"] = div(v, rolling(v, 20, np.mean), 1.0) - 1
    for n in (20, 60):
        mean = rolling(r1, n, np.mean)
        ref[f"sharpe_{n}"] = np.clip(div(mean, rolling(r1, n, lambda w: w.std(ddof=1)), 0.0) * year, -20, 20)
        downside = rolling(r1, n, lambda w: math.sqrt(np.mean(np.minimum(w, 0) ** 2)))
        ref[f"sortino_{n}"] = np.clip(div(mean, downside, 0.0) * year, -20, 20)
    ref["bb_width_20"] = 4 * sd / mid
    ref["dist_52w_high"] = c / rolling(h, 252, np.max) - 1
    ref["dist_52w_low"] = c / rolling(l, 252, np.min) - 1
    ref["macd_hist_rel"] = (macd - ema(macd, span(9))) / c
    weekday = np.array([d.weekday() for d in frame["date"].to_list()])  # Monday = 0
    ref["dow_sin"] = np.sin(2 * math.pi * weekday / 7)
    ref["dow_cos"] = np.cos(2 * math.pi * weekday / 7)
    ref["efficiency_ratio_10"] = div(
        np.abs(c - shift(c, 10)), rolling(np.abs(np.diff(c, prepend=np.nan)), 10, np.sum), 0.0
    )
    hh, ll = rolling(h, 14, np.max), rolling(l, 14, np.min)
    ref["williams_r_14"] = -100 * div(hh - c, hh - ll, 0.5)
    tp_change = np.diff(tp, prepend=np.nan)
    flow = tp * v
    up_flow = rolling(np.where(tp_change > 0, flow, 0.0), 14, np.sum)
    all_flow = rolling(np.where(tp_change != 0, np.where(np.isnan(tp_change), 0.0, flow), 0.0), 14, np.sum)
    ref["mfi_14"] = div(100 * up_flow, all_flow, 50.0)
    ref["vol_ratio_5_63"] = div(
        rolling(r1, 5, lambda w: w.std(ddof=1)), rolling(r1, 63, lambda w: w.std(ddof=1)), 1.0
    )

    def skew(w: np.ndarray) -> float:
        d = w - w.mean()
        return float(np.mean(d**3) / np.mean(d**2) ** 1.5)

    ref["skew_63"] = rolling(r1, 63, skew)
    return ref


# --- tests --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(msft: pl.DataFrame) -> pl.DataFrame:
    return build_features(msft, "a50")


@pytest.fixture(scope="module")
def expected(msft: pl.DataFrame) -> dict[str, np.ndarray]:
    return references(msft)


def test_every_a50_feature_has_a_reference(expected: dict[str, np.ndarray]) -> None:
    assert sorted(expected) == sorted(feature_names("a50"))


@pytest.mark.parametrize("name", feature_names("a50"))
def test_feature_matches_textbook_reference(
    name: str, msft: pl.DataFrame, built: pl.DataFrame, expected: dict[str, np.ndarray]
) -> None:
    kept = msft["date"].is_in(built["date"].implode()).to_numpy()
    want = expected[name][kept]
    got = built[name].to_numpy()
    assert np.isfinite(want).all(), f"reference {name} is not defined after the warm-up"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


def test_a20_is_the_first_twenty_of_a50(msft: pl.DataFrame, built: pl.DataFrame) -> None:
    a20 = build_features(msft, "a20")
    assert a20.columns == built.columns[: len(a20.columns)]
    assert a20.equals(built.select(a20.columns))
