"""Indicator building blocks: each takes and returns a ``pl.Expr``, one price series at a time.

These are the textbook formulas, without normalisation; ``fintrain.features.tiers`` chains them
into helper columns and turns those into stationary features (ratios to close, bounded
oscillators, z-scores). Nothing here groups by ticker: the builder restarts each recursive helper
column (an EWM, a cumulative sum) at every ticker of a frame of several, and nulls the first rows
of each ticker in a column that looks back (a diff, a shift), so no value reaches across two.

Smoothing conventions (those of TA-Lib and most charting tools, except the seed):
EMA(n) is ``ewm_mean(span=n, adjust=False)``; Wilder's smoothing (RSI, ATR, ADX) is
``ewm_mean(alpha=1/n, adjust=False)``. Polars seeds a recursive average with the first value
where TA-Lib seeds with the SMA of the first n; the difference decays geometrically, which is
what each feature's warm-up allows for (see ``ewm_warmup``).
"""

from __future__ import annotations

import math

import polars as pl

# Below this a denominator counts as zero (flat price ranges, volume-less days).
EPS = 1e-12
# A recursive average counts as warmed up once its seed's weight has fallen below this.
SEED_WEIGHT = 0.01

close = pl.col("close")
high = pl.col("high")
low = pl.col("low")
open_ = pl.col("open")
volume = pl.col("volume")


def ewm_warmup(alpha: float) -> int:
    """Rows until the seed of ``ewm_mean(alpha=alpha, adjust=False)`` weighs < SEED_WEIGHT."""
    return math.ceil(math.log(SEED_WEIGHT) / math.log(1.0 - alpha))


def span_alpha(n: int) -> float:
    """The smoothing factor of EMA(n): 2 / (n + 1)."""
    return 2.0 / (n + 1)


def safe_div(num: pl.Expr, den: pl.Expr, fallback: float) -> pl.Expr:
    """``num / den``, or ``fallback`` where ``|den|`` is (numerically) zero."""
    return pl.when(den.abs() > EPS).then(num / den).otherwise(pl.lit(fallback, dtype=pl.Float64))




def ema(x: pl.Expr, n: int) -> pl.Expr:
    """Exponential moving average of span n, seeded with the first value."""
    return x.ewm_mean(span=n, adjust=False)




def wilder(x: pl.Expr, n: int) -> pl.Expr:
    """Wilder's smoothing of period n (an EMA with alpha 1/n)."""
    return x.ewm_mean(alpha=1.0 / n, adjust=False)


def rsi(gain: pl.Expr, loss: pl.Expr) -> pl.Expr:
    """RSI from Wilder-smoothed gain and loss, 0..100.

    RSI = 100 gain / (gain + loss), the same as 100 - 100 / (1 + gain / loss) without dividing
    by a zero loss in an unbroken rise; 50 where the series did not move at all.
    """
    return safe_div(100.0 * gain, gain + loss, 50.0)


def true_range() -> pl.Expr:
    """max(high - low, |high - prev close|, |low - prev close|); null on the first row."""
    prev = close.shift(1)
    return (
        pl.when(prev.is_null())
        .then(None)
        .otherwise(pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs()))
    )


def directional_movement() -> tuple[pl.Expr, pl.Expr]:
    """Wilder's +DM and -DM: the day's up move of the high or down move of the low, whichever
    is larger and positive (else 0); null on the first row (no previous bar), so a smoothing of
    them starts where moves exist."""
    up = high.diff()
    down = -low.diff()
    plus_dm = pl.when(up.is_null()).then(None).when((up > down) & (up > 0)).then(up).otherwise(0.0)
    minus_dm = (
        pl.when(up.is_null()).then(None).when((down > up) & (down > 0)).then(down).otherwise(0.0)
    )
    return plus_dm, minus_dm


def directional_index(smoothed_dm: pl.Expr, atr: pl.Expr) -> pl.Expr:
    """+DI or -DI: 100 x Wilder-smoothed DM / ATR (0 where the ATR is 0)."""
    return safe_div(100.0 * smoothed_dm, atr, 0.0)


def directional_spread(plus_di: pl.Expr, minus_di: pl.Expr) -> pl.Expr:
    """DX, what ADX smooths: 100 |+DI - -DI| / (+DI + -DI), 0 when both are 0."""
    return safe_div(100.0 * (plus_di - minus_di).abs(), plus_di + minus_di, 0.0)


def obv_change() -> pl.Expr:
    """The day's change of on-balance volume: +volume on an up close, -volume on a down close."""
    return close.diff().sign() * volume


def money_flow_volume() -> pl.Expr:
    """Chaikin's money-flow volume: ((c - l) - (h - c)) / (h - l) x volume; 0 on a flat day."""
    return safe_div((close - low) - (high - close), high - low, 0.0) * volume




def typical_price() -> pl.Expr:
    """(high + low + close) / 3."""
    return (high + low + close) / 3.0




def log_return(n: int = 1) -> pl.Expr:
    """log(close_t / close_{t-n})."""
    return (close / close.shift(n)).log()
