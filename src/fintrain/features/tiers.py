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
# 2: recursive helpers split into a smoothing and what it smooths; look-back rows nulled per ticker.
BUILD_VERSION = 2
DAYS_PER_WEEK = 5
ANNUAL_DAYS = 252


@dataclass(frozen=True)
class Helper:
    """A named intermediate column (``_``-prefixed) that features read.

    ``recursive`` says the expression carries state from row to row (an EWM, a cumulative
    sum): over a frame of several tickers it must restart at each ticker (``.over``). Every other
    expression looks back a finite number of rows, fewer than the tier's warm-up. A recursive
    helper is kept to the smoothing itself (an EWM of a column); what it smooths is a helper of
    its own, computed over the whole frame at once, because an expression restarted per ticker
    is evaluated ticker by ticker, several times slower.

    ``lookback`` is how many rows back the expression reads (1 for a diff or a shift). Over a
    frame of several tickers the builder nulls the first ``lookback`` rows of each ticker, as
    a build of that ticker alone has them: a recursive helper reading this one must not start
    from a value computed across two tickers.
    """

    expr: pl.Expr
    recursive: bool = False
    lookback: int = 0

    @property
    def name(self) -> str:
        """The column name."""
        return self.expr.meta.output_name()


@dataclass(frozen=True)
class Feature:
    """One feature: a named expression, what it computes, and its warm-up in rows.

    ``weekly`` features are evaluated on weekly bars (close of the week's last day, high/low
    extremes, summed volume) of completed weeks and joined back to the days of the next week.
    ``helpers`` are named intermediate columns (``_``-prefixed) the expression reads; the
    builder computes each once per tier, before the features, and drops them at the end. They
    exist because Polars would otherwise evaluate a shared sub-expression (an RSI inside a
    StochRSI, a true range inside ATR and ADX) once per use. ``recursive`` marks an expression
    that carries state from row to row, as :class:`Helper`'s does.
    """

    expr: pl.Expr
    formula: str
    warmup: int
    weekly: bool = False
    helpers: tuple[Helper, ...] = ()
    recursive: bool = False

    @property
    def name(self) -> str:
        """The output column name."""
        return self.expr.meta.output_name()


def _weekly_rows(weeks: int) -> int:
    return (weeks + 1) * DAYS_PER_WEEK


def _h(name: str, expr: pl.Expr, recursive: bool = False, lookback: int = 0) -> Helper:
    """A helper column's definition, named ``_name``."""
    return Helper(expr.alias(f"_{name}"), recursive, lookback)


def _c(name: str) -> pl.Expr:
    """A reference to the helper column ``_name``."""
    return pl.col(f"_{name}")


_CHANGE = _h("change_1", close.diff(), lookback=1)


def _rsi_helpers(n: int) -> tuple[Helper, ...]:
    """Wilder's RSI(n) of close: the day's change, its smoothed gain and loss (recursive) and
    the RSI of them."""
    change = _c("change_1")
    return (
        _CHANGE,
        _h(f"gain_{n}", ind.wilder(change.clip(lower_bound=0.0), n), recursive=True),
        _h(f"loss_{n}", ind.wilder((-change).clip(lower_bound=0.0), n), recursive=True),
        _h(f"rsi_{n}", ind.rsi(_c(f"gain_{n}"), _c(f"loss_{n}"))),
    )


_TRUE_RANGE = _h("true_range", ind.true_range(), lookback=1)


def _atr_helpers(n: int) -> tuple[Helper, ...]:
    """The true range and Wilder's average of it (in price units)."""
    return _TRUE_RANGE, _h(f"atr_{n}", ind.wilder(_c("true_range"), n), recursive=True)


_PLUS_DM, _MINUS_DM = (
    _h(name, dm, lookback=1) for name, dm in zip(("plus_dm", "minus_dm"), ind.directional_movement())
)


def _adx_helpers(n: int) -> tuple[Helper, ...]:
    """The ATR, the smoothed +DM and -DM, +DI and -DI, DX and ADX (its Wilder smoothing)."""
    plus_di, minus_di = _c(f"plus_di_{n}"), _c(f"minus_di_{n}")
    return (
        *_atr_helpers(n),
        _PLUS_DM,
        _MINUS_DM,
        _h(f"plus_dm_{n}", ind.wilder(_c("plus_dm"), n), recursive=True),
        _h(f"minus_dm_{n}", ind.wilder(_c("minus_dm"), n), recursive=True),
        _h(f"plus_di_{n}", ind.directional_index(_c(f"plus_dm_{n}"), _c(f"atr_{n}"))),
        _h(f"minus_di_{n}", ind.directional_index(_c(f"minus_dm_{n}"), _c(f"atr_{n}"))),
        _h(f"dx_{n}", ind.directional_spread(plus_di, minus_di)),
        _h(f"adx_{n}", ind.wilder(_c(f"dx_{n}"), n), recursive=True),
    )


def _ema_helper(n: int) -> Helper:
    return _h(f"ema_{n}", ind.ema(close, n), recursive=True)


def _ratio_to_close(level: pl.Expr) -> pl.Expr:
    return ind.safe_div(close, level, 1.0) - 1.0


# Rolling statistics that several features share; each is computed once as a helper column
# (Polars does not eliminate repeated rolling sub-expressions by itself).
def _sma(n: int) -> Helper:
    return _h(f"sma_{n}", close.rolling_mean(n))


def _sd0(n: int) -> Helper:
    return _h(f"sd0_{n}", close.rolling_std(n, ddof=0))


_VOL_MEAN_20 = _h("vol_mean_20", volume.rolling_mean(20))
_RET1 = _h("ret_1", ind.log_return(1))
_ret1 = _c("ret_1")


def _ret_std(n: int) -> Helper:
    return _h(f"ret_1_std_{n}", _ret1.rolling_std(n))


def _ret_mean(n: int) -> Helper:
    return _h(f"ret_1_mean_{n}", _ret1.rolling_mean(n))


def _stoch_of(src: str, n: int) -> tuple[pl.Expr, tuple[Helper, ...]]:
    """Where helper ``_src`` sits in its n-row range (0..1, 0.5 when flat), and the helpers."""
    x, lo, hi = _c(src), _c(f"{src}_lo_{n}"), _c(f"{src}_hi_{n}")
    helpers = (_h(f"{src}_lo_{n}", x.rolling_min(n)), _h(f"{src}_hi_{n}", x.rolling_max(n)))
    return ind.safe_div(x - lo, hi - lo, 0.5), helpers


def _zscore_of(src: str, n: int) -> tuple[pl.Expr, tuple[Helper, ...]]:
    """(x - mean_n) / std_n of helper ``_src`` (0 where it was constant), and the helpers."""
    x, mean, sd = _c(src), _c(f"{src}_mean_{n}"), _c(f"{src}_std_{n}")
    helpers = (_h(f"{src}_mean_{n}", x.rolling_mean(n)), _h(f"{src}_std_{n}", x.rolling_std(n)))
    return ind.safe_div(x - mean, sd, 0.0), helpers


# --- the a20 features -------------------------------------------------------------------------


def sma_ratio(n: int) -> Feature:
    """close / SMA(n) - 1."""
    return Feature(
        _ratio_to_close(_c(f"sma_{n}")).alias(f"sma_ratio_{n}"),
        f"close / SMA({n}) of close - 1",
        n - 1,
        helpers=(_sma(n),),
    )


def dema_ratio(n: int) -> Feature:
    """close / DEMA(n) - 1."""
    ema_of_ema = _h(f"ema_ema_{n}", ind.ema(_c(f"ema_{n}"), n), recursive=True)
    dema_n = _h(f"dema_{n}", 2 * _c(f"ema_{n}") - _c(f"ema_ema_{n}"))
    return Feature(
        _ratio_to_close(_c(f"dema_{n}")).alias(f"dema_ratio_{n}"),
        f"close / DEMA({n}) - 1, DEMA = 2 EMA({n}) - EMA(EMA({n}))",
        2 * ind.ewm_warmup(ind.span_alpha(n)),
        helpers=(_ema_helper(n), ema_of_ema, dema_n),
    )


def rsi_feature(n: int) -> Feature:
    """Daily RSI(n)."""
    return Feature(
        _c(f"rsi_{n}").alias(f"rsi_{n}"),
        f"Wilder RSI({n}) of close, 0..100",
        1 + ind.ewm_warmup(1.0 / n),
        helpers=_rsi_helpers(n),
    )


def stoch_rsi_feature(n: int) -> Feature:
    """Daily StochRSI(n)."""
    expr, helpers = _stoch_of(f"rsi_{n}", n)
    return Feature(
        expr.alias(f"stoch_rsi_{n}"),
        f"position of RSI({n}) in its {n}-day range, 0..1",
        1 + ind.ewm_warmup(1.0 / n) + n - 1,
        helpers=(*_rsi_helpers(n), *helpers),
    )


def weekly_rsi_feature(n: int) -> Feature:
    """RSI(n) of weekly closes, from completed weeks."""
    return Feature(
        _c(f"rsi_{n}").alias(f"rsi_{n}_w"),
        f"Wilder RSI({n}) of weekly closes (last completed week), 0..100",
        _weekly_rows(1 + ind.ewm_warmup(1.0 / n)),
        weekly=True,
        helpers=_rsi_helpers(n),
    )


def weekly_stoch_rsi_feature(n: int) -> Feature:
    """StochRSI(n) of weekly closes, from completed weeks."""
    expr, helpers = _stoch_of(f"rsi_{n}", n)
    return Feature(
        expr.alias(f"stoch_rsi_{n}_w"),
        f"position of weekly RSI({n}) in its {n}-week range (last completed week), 0..1",
        _weekly_rows(1 + ind.ewm_warmup(1.0 / n) + n - 1),
        weekly=True,
        helpers=(*_rsi_helpers(n), *helpers),
    )


# MACD line: EMA(12) - EMA(26) of close, in price units.
_MACD = (_ema_helper(12), _ema_helper(26), _h("macd", _c("ema_12") - _c("ema_26")))


def macd_feature() -> Feature:
    """MACD line relative to close."""
    return Feature(
        (_c("macd") / close).alias("macd_rel"),
        "(EMA(12) - EMA(26)) / close",
        ind.ewm_warmup(ind.span_alpha(26)),
        helpers=_MACD,
    )


def obv_feature(n: int = 20) -> Feature:
    """OBV as a rolling z-score of its daily change."""
    expr, helpers = _zscore_of("obv_change", n)
    return Feature(
        expr.alias(f"obv_z_{n}"),
        f"z-score over {n} days of OBV's daily change (sign of close change x volume)",
        n,
        helpers=(_h("obv_change", ind.obv_change()), *helpers),
    )


def ad_oscillator_feature() -> Feature:
    """Chaikin A/D oscillator over mean volume."""
    flow = _h("money_flow", ind.money_flow_volume())
    line = _h("ad_line", _c("money_flow").cum_sum(), recursive=True)
    fast = _h("ad_ema_3", ind.ema(_c("ad_line"), 3), recursive=True)
    slow = _h("ad_ema_10", ind.ema(_c("ad_line"), 10), recursive=True)
    osc = _h("ad_osc", _c("ad_ema_3") - _c("ad_ema_10"))
    return Feature(
        ind.safe_div(_c("ad_osc"), _c("vol_mean_20"), 0.0).alias("ad_osc_rel"),
        "Chaikin oscillator (EMA(3) - EMA(10) of the A/D line) / mean volume(20)",
        max(ind.ewm_warmup(ind.span_alpha(10)), 19),
        helpers=(flow, line, fast, slow, osc, _VOL_MEAN_20),
    )


def atr_feature(n: int = 14) -> Feature:
    """ATR relative to close."""
    return Feature(
        (_c(f"atr_{n}") / close).alias(f"atr_rel_{n}"),
        f"Wilder ATR({n}) / close",
        1 + ind.ewm_warmup(1.0 / n),
        helpers=_atr_helpers(n),
    )


def adx_feature(n: int = 14) -> Feature:
    """Wilder's ADX."""
    return Feature(
        _c(f"adx_{n}").alias(f"adx_{n}"),
        f"Wilder ADX({n}), trend strength 0..100",
        1 + 2 * ind.ewm_warmup(1.0 / n),
        helpers=_adx_helpers(n),
    )


def bollinger_pctb_feature(n: int = 20, k: float = 2.0) -> Feature:
    """Bollinger %B."""
    mid, sd = _c(f"sma_{n}"), _c(f"sd0_{n}")
    return Feature(
        ind.safe_div(close - (mid - k * sd), 2 * k * sd, 0.5).alias(f"bb_pctb_{n}"),
        f"Bollinger %B: (close - lower) / (upper - lower), bands SMA({n}) +- {k:g} std (ddof 0)",
        n - 1,
        helpers=(_sma(n), _sd0(n)),
    )


def vwap_feature(n: int = 20) -> Feature:
    """close over the n-day VWAP."""
    tp = ind.typical_price()
    helpers = (
        _h(f"tpv_sum_{n}", (tp * volume).rolling_sum(n)),
        _h(f"vol_sum_{n}", volume.rolling_sum(n)),
        _h(f"tp_mean_{n}", tp.rolling_mean(n)),
    )
    vol = _c(f"vol_sum_{n}")
    # Where no volume traded for n days, the plain mean of the typical price stands in.
    vwap = pl.when(vol > ind.EPS).then(_c(f"tpv_sum_{n}") / vol).otherwise(_c(f"tp_mean_{n}"))
    return Feature(
        _ratio_to_close(vwap).alias(f"vwap_ratio_{n}"),
        f"close / VWAP({n}) - 1, VWAP of the typical price (h+l+c)/3",
        n - 1,
        helpers=helpers,
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
        (_c(f"ret_1_std_{n}") * _sqrt_year).alias(f"rvol_{n}"),
        f"std of daily log returns over {n} days x sqrt({ANNUAL_DAYS})",
        n,
        helpers=(_RET1, _ret_std(n)),
    )


def parkinson_feature(n: int = 21) -> Feature:
    """Parkinson high-low volatility."""
    hl2_mean = ((high / low).log() ** 2).rolling_mean(n).clip(lower_bound=0.0)
    return Feature(
        ((hl2_mean / (4 * math.log(2))).sqrt() * _sqrt_year).alias(f"parkinson_vol_{n}"),
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
    if downside:
        # clip: a rolling mean of squares can come out a hair below zero in floating point.
        dd = (_ret1.clip(upper_bound=0.0) ** 2).rolling_mean(n).clip(lower_bound=0.0).sqrt()
        dev_helper = _h(f"ret_1_dd_{n}", dd)
        dev = _c(f"ret_1_dd_{n}")
        name, words = f"sortino_{n}", "downside deviation"
    else:
        dev_helper = _ret_std(n)
        dev = _c(f"ret_1_std_{n}")
        name, words = f"sharpe_{n}", "std"
    ratio = ind.safe_div(_c(f"ret_1_mean_{n}"), dev, 0.0) * _sqrt_year
    return Feature(
        ratio.clip(-RATIO_CLIP, RATIO_CLIP).alias(name),
        f"mean / {words} of daily log returns over {n} days x sqrt({ANNUAL_DAYS}), "
        f"clipped to +-{RATIO_CLIP:g}",
        n,
        helpers=(_RET1, _ret_mean(n), dev_helper),
    )


def _simple(
    name: str, expr: pl.Expr, formula: str, warmup: int, helpers: tuple[Helper, ...] = (), recursive: bool = False
) -> Feature:
    return Feature(expr.alias(name), formula, warmup, helpers=helpers, recursive=recursive)


def _dow(fn: str) -> pl.Expr:
    angle = 2 * math.pi * (pl.col("date").dt.weekday() - 1) / 7.0
    return angle.sin() if fn == "sin" else angle.cos()


def _volume_z(n: int) -> Feature:
    expr, helpers = _zscore_of("log_volume", n)
    return _simple(
        f"volume_z_{n}",
        expr,
        f"z-score over {n} days of log(1 + volume)",
        n - 1,
        (_h("log_volume", volume.log1p()), *helpers),
    )


def _money_flow_index(n: int) -> Feature:
    tp = ind.typical_price()
    flow = tp * volume
    up, down = tp.diff() > 0, tp.diff() < 0
    helpers = (
        _h(f"mf_up_{n}", pl.when(up).then(flow).otherwise(0.0).rolling_sum(n)),
        _h(f"mf_all_{n}", pl.when(up | down).then(flow).otherwise(0.0).rolling_sum(n)),
    )
    return _simple(
        f"mfi_{n}",
        ind.safe_div(100.0 * _c(f"mf_up_{n}"), _c(f"mf_all_{n}"), 50.0),
        f"money flow index({n}): 100 x up money flow / total money flow (typical price x volume)",
        n,
        helpers,
    )


def _williams_r(n: int) -> Feature:
    hh, ll = _c(f"high_max_{n}"), _c(f"low_min_{n}")
    return _simple(
        f"williams_r_{n}",
        ind.safe_div(hh - close, hh - ll, 0.5) * -100.0,
        f"Williams %R: -100 (highest high({n}) - close) / (highest high - lowest low), -100..0",
        n - 1,
        (_h(f"high_max_{n}", high.rolling_max(n)), _h(f"low_min_{n}", low.rolling_min(n))),
    )


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
    _volume_z(20),
    _simple(
        "volume_ratio_20",
        ind.safe_div(volume, _c("vol_mean_20"), 1.0) - 1.0,
        "volume / mean volume(20) - 1",
        19,
        (_VOL_MEAN_20,),
    ),
    rolling_ratio_feature(20, downside=False),
    rolling_ratio_feature(60, downside=False),
    rolling_ratio_feature(20, downside=True),
    rolling_ratio_feature(60, downside=True),
    _simple(
        "bb_width_20",
        ind.safe_div(4 * _c("sd0_20"), _c("sma_20"), 0.0),
        "Bollinger band width: 4 std(20, ddof 0) / SMA(20)",
        19,
        (_sma(20), _sd0(20)),
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
        (_c("macd") - ind.ema(_c("macd"), 9)) / close,
        "(MACD - EMA(9) of MACD) / close, MACD = EMA(12) - EMA(26)",
        ind.ewm_warmup(ind.span_alpha(26)) + ind.ewm_warmup(ind.span_alpha(9)),
        _MACD,
        recursive=True,  # the EMA(9) of the MACD line
    ),
    _simple("dow_sin", _dow("sin"), "sin(2 pi (weekday - 1) / 7), Monday = 0", 0),
    _simple("dow_cos", _dow("cos"), "cos(2 pi (weekday - 1) / 7), Monday = 0", 0),
    _simple(
        "efficiency_ratio_10",
        ind.safe_div((close - close.shift(10)).abs(), _c("path_10"), 0.0),
        "Kaufman efficiency: |close - close 10 days ago| / sum of |daily changes|, 0..1",
        10,
        (_h("path_10", close.diff().abs().rolling_sum(10)),),
    ),
    _williams_r(14),
    _money_flow_index(14),
    _simple(
        "vol_ratio_5_63",
        ind.safe_div(_c("ret_1_std_5"), _c("ret_1_std_63"), 1.0),
        "realised volatility(5) / realised volatility(63)",
        63,
        (_RET1, _ret_std(5), _ret_std(63)),
    ),
    _simple(
        "skew_63",
        _ret1.rolling_skew(63),
        "skewness of daily log returns over 63 days",
        63,
        (_RET1,),
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
                [[h.expr.meta.serialize(format="json"), h.recursive, h.lookback] for h in f.helpers],
            ]
            for f in get_tier(tier)
        ],
    ]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()[:16]
