"""Indicator building blocks: each takes and returns a ``pl.Expr``, one price series at a time.

These are the textbook formulas, without normalisation; ``fintrain.features.tiers`` turns them
into stationary features (ratios to close, bounded oscillators, z-scores). Nothing here groups
by ticker: the builder wraps each finished feature in ``.over("ticker")`` when the frame holds
several tickers, so a rolling window never reaches across two of them.

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


def rsi_columns(n: int) -> tuple[pl.Expr, ...]:
    """Helper columns ``_gain_n``, ``_loss_n`` and ``_rsi_n``: Wilder's RSI of close, 0..100.

    RSI = 100 gain / (gain + loss), the same as 100 - 100 / (1 + gain / loss) without dividing
    by a zero loss in an unbroken rise; 50 where the series did not move at all.
    """
    change = close.diff()
    gain, loss = pl.col(f"_gain_{n}"), pl.col(f"_loss_{n}")
    return (
        wilder(change.clip(lower_bound=0.0), n).alias(f"_gain_{n}"),
        wilder((-change).clip(lower_bound=0.0), n).alias(f"_loss_{n}"),
        safe_div(100.0 * gain, gain + loss, 50.0).alias(f"_rsi_{n}"),
    )




def true_range() -> pl.Expr:
    """max(high - low, |high - prev close|, |low - prev close|); null on the first row."""
    prev = close.shift(1)
    return (
        pl.when(prev.is_null())
        .then(None)
        .otherwise(pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs()))
    )


def atr_column(n: int) -> pl.Expr:
    """Helper ``_atr_n``: Wilder's average true range, in price units.

    The true range stays inside this expression (not a helper of its own) so that, over a frame
    of several tickers, its ``shift`` runs per ticker together with the smoothing.
    """
    return wilder(true_range(), n).alias(f"_atr_{n}")


def adx_columns(n: int) -> tuple[pl.Expr, ...]:
    """Helper columns ending in ``_adx_n``, Wilder's average directional index, 0..100.

    Needs ``_atr_n``.
    """
    up = high.diff()
    down = -low.diff()
    # Null on the first row (no previous bar), so the smoothing starts where moves exist.
    plus_dm = pl.when(up.is_null()).then(None).when((up > down) & (up > 0)).then(up).otherwise(0.0)
    minus_dm = (
        pl.when(up.is_null()).then(None).when((down > up) & (down > 0)).then(down).otherwise(0.0)
    )
    atr_n = pl.col(f"_atr_{n}")
    plus_di, minus_di = pl.col(f"_plus_di_{n}"), pl.col(f"_minus_di_{n}")
    return (
        safe_div(100.0 * wilder(plus_dm, n), atr_n, 0.0).alias(f"_plus_di_{n}"),
        safe_div(100.0 * wilder(minus_dm, n), atr_n, 0.0).alias(f"_minus_di_{n}"),
        wilder(safe_div(100.0 * (plus_di - minus_di).abs(), plus_di + minus_di, 0.0), n).alias(
            f"_adx_{n}"
        ),
    )


def macd_line(fast: int = 12, slow: int = 26) -> pl.Expr:
    """EMA(fast) - EMA(slow) of close, in price units."""
    return ema(close, fast) - ema(close, slow)


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
