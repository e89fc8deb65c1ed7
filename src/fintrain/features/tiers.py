"""Feature tiers: named, stationary ``pl.Expr`` features and the registry ``TIERS``.

Every feature is price-relative or bounded (a ratio to close, an oscillator, a z-score), never
a price level: raw moving averages, OBV or ATR in dollars drift out of the training range and
make a model output a constant. Each feature uses rows <= t only.

A feature's ``warmup`` is the number of leading rows whose value is missing or still depends
on where the series started: n - 1 rows for an n-row window, and for a recursive average the
rows until its seed weighs less than 1% (``indicators.ewm_warmup``). Weekly features count five
rows per week (no week has more trading days), plus a week for the current, incomplete one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import polars as pl

from fintrain.errors import ConfigError
from fintrain.features import indicators as ind
from fintrain.features.indicators import close, high, low, open_, volume

# Bump when the build itself changes (warm-up rule, weekly join), so every tier hash changes.
BUILD_VERSION = 1
DAYS_PER_WEEK = 5
ANNUAL_DAYS = 252


@dataclass(frozen=True)
class Feature:
    """One feature: a named expression, what it computes, and its warm-up in rows.

    ``weekly`` features are evaluated on weekly bars (close of the week's last day, high/low
    extremes, summed volume) of completed weeks and joined back to the days of the next week.
    ``helpers`` are named intermediate columns (``_``-prefixed) the expression reads; the
    builder computes each once per tier, before the features, and drops them at the end. They
    exist because Polars would otherwise evaluate a shared sub-expression (an RSI inside a
    StochRSI, a true range inside ATR and ADX) once per use.
    """

    expr: pl.Expr
    formula: str
    warmup: int
    weekly: bool = False
    helpers: tuple[pl.Expr, ...] = ()

    @property
    def name(self) -> str:
        """The output column name."""
        return self.expr.meta.output_name()


def _weekly_rows(weeks: int) -> int:
    return (weeks + 1) * DAYS_PER_WEEK


def _ratio_to_close(level: pl.Expr) -> pl.Expr:
    return ind.safe_div(close, level, 1.0) - 1.0


# --- the a20 features -------------------------------------------------------------------------


def sma_ratio(n: int) -> Feature:
    """close / SMA(n) - 1."""
    return Feature(
        _ratio_to_close(ind.sma(close, n)).alias(f"sma_ratio_{n}"),
        f"close / SMA({n}) of close - 1",
        n - 1,
    )


def dema_ratio(n: int) -> Feature:
    """close / DEMA(n) - 1."""
    return Feature(
        _ratio_to_close(ind.dema(close, n)).alias(f"dema_ratio_{n}"),
        f"close / DEMA({n}) - 1, DEMA = 2 EMA({n}) - EMA(EMA({n}))",
        2 * ind.ewm_warmup(ind.span_alpha(n)),
    )


def rsi_feature(n: int) -> Feature:
    """Daily RSI(n)."""
    return Feature(
        pl.col(f"_rsi_{n}").alias(f"rsi_{n}"),
        f"Wilder RSI({n}) of close, 0..100",
        1 + ind.ewm_warmup(1.0 / n),
        helpers=ind.rsi_columns(n),
    )


def stoch_rsi_feature(n: int) -> Feature:
    """Daily StochRSI(n)."""
    return Feature(
        ind.stoch(pl.col(f"_rsi_{n}"), n).alias(f"stoch_rsi_{n}"),
        f"position of RSI({n}) in its {n}-day range, 0..1",
        1 + ind.ewm_warmup(1.0 / n) + n - 1,
        helpers=ind.rsi_columns(n),
    )


def weekly_rsi_feature(n: int) -> Feature:
    """RSI(n) of weekly closes, from completed weeks."""
    return Feature(
        pl.col(f"_rsi_{n}").alias(f"rsi_{n}_w"),
        f"Wilder RSI({n}) of weekly closes (last completed week), 0..100",
        _weekly_rows(1 + ind.ewm_warmup(1.0 / n)),
        weekly=True,
        helpers=ind.rsi_columns(n),
    )


def weekly_stoch_rsi_feature(n: int) -> Feature:
    """StochRSI(n) of weekly closes, from completed weeks."""
    return Feature(
        ind.stoch(pl.col(f"_rsi_{n}"), n).alias(f"stoch_rsi_{n}_w"),
        f"position of weekly RSI({n}) in its {n}-week range (last completed week), 0..1",
        _weekly_rows(1 + ind.ewm_warmup(1.0 / n) + n - 1),
        weekly=True,
        helpers=ind.rsi_columns(n),
    )


def macd_feature(fast: int = 12, slow: int = 26) -> Feature:
    """MACD line relative to close."""
    return Feature(
        (pl.col("_macd") / close).alias("macd_rel"),
        f"(EMA({fast}) - EMA({slow})) / close",
        ind.ewm_warmup(ind.span_alpha(slow)),
        helpers=(ind.macd_line(fast, slow).alias("_macd"),),
    )


def obv_feature(n: int = 20) -> Feature:
    """OBV as a rolling z-score of its daily change."""
    return Feature(
        ind.zscore(ind.obv_change(), n).alias(f"obv_z_{n}"),
        f"z-score over {n} days of OBV's daily change (sign of close change x volume)",
        n,
    )


def ad_oscillator_feature(fast: int = 3, slow: int = 10, n: int = 20) -> Feature:
    """Chaikin A/D oscillator over mean volume."""
    return Feature(
        ind.safe_div(ind.ad_oscillator(fast, slow), volume.rolling_mean(n), 0.0).alias(
            "ad_osc_rel"
        ),
        f"Chaikin oscillator (EMA({fast}) - EMA({slow}) of the A/D line) / mean volume({n})",
        max(ind.ewm_warmup(ind.span_alpha(slow)), n - 1),
    )


def atr_feature(n: int = 14) -> Feature:
    """ATR relative to close."""
    return Feature(
        (pl.col(f"_atr_{n}") / close).alias(f"atr_rel_{n}"),
        f"Wilder ATR({n}) / close",
        1 + ind.ewm_warmup(1.0 / n),
        helpers=(ind.atr_column(n),),
    )


def adx_feature(n: int = 14) -> Feature:
    """Wilder's ADX."""
    return Feature(
        pl.col(f"_adx_{n}").alias(f"adx_{n}"),
        f"Wilder ADX({n}), trend strength 0..100",
        1 + 2 * ind.ewm_warmup(1.0 / n),
        helpers=(ind.atr_column(n), *ind.adx_columns(n)),
    )


def bollinger_pctb_feature(n: int = 20, k: float = 2.0) -> Feature:
    """Bollinger %B."""
    mid = ind.sma(close, n)
    sd = close.rolling_std(n, ddof=0)
    return Feature(
        ind.safe_div(close - (mid - k * sd), 2 * k * sd, 0.5).alias(f"bb_pctb_{n}"),
        f"Bollinger %B: (close - lower) / (upper - lower), bands SMA({n}) +- {k:g} std (ddof 0)",
        n - 1,
    )


def vwap_feature(n: int = 20) -> Feature:
    """close over the n-day VWAP."""
    return Feature(
        _ratio_to_close(ind.vwap(n)).alias(f"vwap_ratio_{n}"),
        f"close / VWAP({n}) - 1, VWAP of the typical price (h+l+c)/3",
        n - 1,
    )


A20: tuple[Feature, ...] = (
    *(sma_ratio(n) for n in (9, 20, 50, 100, 200)),
    *(dema_ratio(n) for n in (9, 20, 50, 100)),
    rsi_feature(14),
    weekly_rsi_feature(14),
    stoch_rsi_feature(14),
    weekly_stoch_rsi_feature(14),
    macd_feature(),
    obv_feature(),
    ad_oscillator_feature(),
    atr_feature(),
    adx_feature(),
    bollinger_pctb_feature(),
    vwap_feature(),
)

# --- the a50 additions ------------------------------------------------------------------------

_ret1 = pl.col("_ret_1")
_RET1 = (ind.log_return(1).alias("_ret_1"),)
_sqrt_year = math.sqrt(ANNUAL_DAYS)
# A calm month with no down day has a downside deviation of ~0; bound the ratio instead of
# letting it explode. Annualised Sharpe and Sortino of a 20-60 day window rarely exceed 20.
RATIO_CLIP = 20.0


def log_return_feature(n: int) -> Feature:
    """log(close_t / close_{t-n})."""
    return Feature(ind.log_return(n).alias(f"logret_{n}"), f"log(close / close {n} days ago)", n)


def realised_vol_feature(n: int) -> Feature:
    """Annualised realised volatility."""
    return Feature(
        (_ret1.rolling_std(n) * _sqrt_year).alias(f"rvol_{n}"),
        f"std of daily log returns over {n} days x sqrt({ANNUAL_DAYS})",
        n,
        helpers=_RET1,
    )


def parkinson_feature(n: int = 21) -> Feature:
    """Parkinson high-low volatility."""
    hl2 = (high / low).log() ** 2
    return Feature(
        ((hl2.rolling_mean(n).clip(lower_bound=0.0) / (4 * math.log(2))).sqrt() * _sqrt_year).alias(f"parkinson_vol_{n}"),
        f"sqrt(mean over {n} days of ln(h/l)^2 / (4 ln 2)) x sqrt({ANNUAL_DAYS})",
        n - 1,
    )


def garman_klass_feature(n: int = 21) -> Feature:
    """Garman-Klass volatility."""
    term = 0.5 * (high / low).log() ** 2 - (2 * math.log(2) - 1) * (close / open_).log() ** 2
    return Feature(
        (term.rolling_mean(n).clip(lower_bound=0.0).sqrt() * _sqrt_year).alias(f"gk_vol_{n}"),
        f"sqrt(mean over {n} days of 0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2) x sqrt({ANNUAL_DAYS})",
        n - 1,
    )


def rolling_ratio_feature(n: int, downside: bool) -> Feature:
    """Rolling annualised Sharpe (or Sortino) ratio of daily log returns."""
    mean = _ret1.rolling_mean(n)
    if downside:
        # clip: a rolling mean of squares can come out a hair below zero in floating point.
        dev = (_ret1.clip(upper_bound=0.0) ** 2).rolling_mean(n).clip(lower_bound=0.0).sqrt()
        name, words = f"sortino_{n}", "downside deviation"
    else:
        dev = _ret1.rolling_std(n)
        name, words = f"sharpe_{n}", "std"
    ratio = ind.safe_div(mean, dev, 0.0) * _sqrt_year
    return Feature(
        ratio.clip(-RATIO_CLIP, RATIO_CLIP).alias(name),
        f"mean / {words} of daily log returns over {n} days x sqrt({ANNUAL_DAYS}), "
        f"clipped to +-{RATIO_CLIP:g}",
        n,
        helpers=_RET1,
    )


def _simple(
    name: str, expr: pl.Expr, formula: str, warmup: int, helpers: tuple[pl.Expr, ...] = ()
) -> Feature:
    return Feature(expr.alias(name), formula, warmup, helpers=helpers)


def _dow(fn: str) -> pl.Expr:
    angle = 2 * math.pi * (pl.col("date").dt.weekday() - 1) / 7.0
    return angle.sin() if fn == "sin" else angle.cos()


_vol_log = volume.log1p()
_bb_sd = close.rolling_std(20, ddof=0)
_macd = pl.col("_macd")
_mf = ind.typical_price() * volume
_tp_up = ind.typical_price().diff() > 0
_tp_down = ind.typical_price().diff() < 0

A50_EXTRA: tuple[Feature, ...] = (
    *(log_return_feature(n) for n in (1, 5, 21, 63, 252)),
    *(realised_vol_feature(n) for n in (5, 21, 63)),
    parkinson_feature(21),
    garman_klass_feature(21),
    _simple("gap_overnight", (open_ / close.shift(1)).log(), "log(open / previous close)", 1),
    _simple("range_intraday", (high / low).log(), "log(high / low)", 0),
    _simple(
        "close_location",
        ind.safe_div(close - low, high - low, 0.5),
        "(close - low) / (high - low), 0..1; 0.5 on a flat day",
        0,
    ),
    _simple(
        "volume_z_20",
        ind.zscore(_vol_log, 20),
        "z-score over 20 days of log(1 + volume)",
        19,
    ),
    _simple(
        "volume_ratio_20",
        ind.safe_div(volume, volume.rolling_mean(20), 1.0) - 1.0,
        "volume / mean volume(20) - 1",
        19,
    ),
    rolling_ratio_feature(20, downside=False),
    rolling_ratio_feature(60, downside=False),
    rolling_ratio_feature(20, downside=True),
    rolling_ratio_feature(60, downside=True),
    _simple(
        "bb_width_20",
        ind.safe_div(4 * _bb_sd, ind.sma(close, 20), 0.0),
        "Bollinger band width: 4 std(20, ddof 0) / SMA(20)",
        19,
    ),
    _simple(
        "dist_52w_high",
        close / high.rolling_max(ANNUAL_DAYS) - 1.0,
        f"close / highest high of {ANNUAL_DAYS} days - 1",
        ANNUAL_DAYS - 1,
    ),
    _simple(
        "dist_52w_low",
        close / low.rolling_min(ANNUAL_DAYS) - 1.0,
        f"close / lowest low of {ANNUAL_DAYS} days - 1",
        ANNUAL_DAYS - 1,
    ),
    _simple(
        "macd_hist_rel",
        (_macd - ind.ema(_macd, 9)) / close,
        "(MACD - EMA(9) of MACD) / close, MACD = EMA(12) - EMA(26)",
        ind.ewm_warmup(ind.span_alpha(26)) + ind.ewm_warmup(ind.span_alpha(9)),
        helpers=(ind.macd_line(12, 26).alias("_macd"),),
    ),
    _simple("dow_sin", _dow("sin"), "sin(2 pi (weekday - 1) / 7), Monday = 0", 0),
    _simple("dow_cos", _dow("cos"), "cos(2 pi (weekday - 1) / 7), Monday = 0", 0),
    _simple(
        "efficiency_ratio_10",
        ind.safe_div((close - close.shift(10)).abs(), close.diff().abs().rolling_sum(10), 0.0),
        "Kaufman efficiency: |close - close 10 days ago| / sum of |daily changes|, 0..1",
        10,
    ),
    _simple(
        "williams_r_14",
        ind.safe_div(high.rolling_max(14) - close, high.rolling_max(14) - low.rolling_min(14), 0.5)
        * -100.0,
        "Williams %R: -100 (highest high(14) - close) / (highest high - lowest low), -100..0",
        13,
    ),
    _simple(
        "mfi_14",
        ind.safe_div(
            100.0 * pl.when(_tp_up).then(_mf).otherwise(0.0).rolling_sum(14),
            pl.when(_tp_up | _tp_down).then(_mf).otherwise(0.0).rolling_sum(14),
            50.0,
        ),
        "money flow index(14): 100 x up money flow / total money flow (typical price x volume)",
        14,
    ),
    _simple(
        "vol_ratio_5_63",
        ind.safe_div(_ret1.rolling_std(5), _ret1.rolling_std(63), 1.0),
        "realised volatility(5) / realised volatility(63)",
        63,
        _RET1,
    ),
    _simple(
        "skew_63",
        _ret1.rolling_skew(63),
        "skewness of daily log returns over 63 days",
        63,
        _RET1,
    ),
)

A50: tuple[Feature, ...] = (*A20, *A50_EXTRA)

TIERS: dict[str, tuple[Feature, ...]] = {"a20": A20, "a50": A50}

TIER_SUMMARIES: dict[str, str] = {
    "a20": "20 stationary indicators: MA ratios, RSI/StochRSI daily and weekly, MACD, OBV, "
    "A/D, ATR, ADX, %B, VWAP",
    "a50": "a20 plus returns, volatility estimators, volume, risk ratios, 52-week distance, "
    "calendar and oscillators",
}


def get_tier(tier: str) -> tuple[Feature, ...]:
    """A tier's features; an unknown name is a ConfigError listing the known tiers."""
    try:
        return TIERS[tier]
    except KeyError:
        raise ConfigError(
            f"unknown feature tier {tier!r}; known tiers: {', '.join(sorted(TIERS))}"
        ) from None


def feature_names(tier: str) -> list[str]:
    """The feature column names of a tier, in order."""
    return [f.name for f in get_tier(tier)]


def tier_warmup(tier: str) -> int:
    """The tier's longest warm-up: the rows a build drops from the start of each series."""
    return max(f.warmup for f in get_tier(tier))


def tier_hash(tier: str) -> str:
    """A hash of the tier's definition: names, expressions (with their parameters), warm-ups.

    Changing a feature's code or parameters changes its serialised expression and so the hash;
    a stored build whose hash differs is stale.
    """
    document = [
        BUILD_VERSION,
        [
            [
                f.name,
                f.weekly,
                f.warmup,
                f.expr.meta.serialize(format="json"),
                [h.meta.serialize(format="json") for h in f.helpers],
            ]
            for f in get_tier(tier)
        ],
    ]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()[:16]
