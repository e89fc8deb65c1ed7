"""How fast fintrain builds features and window tensors, against the targets of the issue.

Prints, in one run:

1. a20 and a50 for SPY's full history (the shared SPY file, else a generated 8,000-row series),
   from the raw Parquet file through the written feature frame: median of ``--repeats`` runs
   (targets: a20 < 50 ms, a50 < 100 ms).
2. A generated universe of 50 / 100 / 500 tickers x 8,000 rows built in one lazy pass
   (``.over("ticker")`` for the recursive indicators): wall and CPU time, rows per second, and
   time per ticker to show the growth is linear (target: 500 tickers < 5 s). When TA-Lib is
   installed (the ``bench`` extra), the same a20 frame is also computed with TA-Lib in a
   per-ticker loop (``talib_a20``), side by side, and the two frames are compared (target:
   fintrain within 1.5x of TA-Lib's time at 500 tickers).
3. SPY a20, context 60: ``build_dataset`` (target < 20 ms) and a gather of 256 windows
   (target < 1 ms), beside two other ways to gather, each with the default torch threads and
   with one (on a busy 2-core machine, two threads wait on each other).

Wall time depends on what else runs on the machine: the script prints the load average before
and after and the CPU time of each measurement beside its wall time.

Usage::

    python benchmarks/features.py [--spy ../shared/data/SPY_daily_1993-2021.csv] [--tickers 50,100,500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import torch

from fintrain.config import SplitConfig, TargetConfig
from fintrain.data.sources import RawSeries
from fintrain.data.store import raw_path, save_raw
from fintrain.dataset import build_dataset
from fintrain.features import build_features, feature_names, tier_warmup
from fintrain.features.build import OHLCV

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPY = REPO.parent / "shared" / "data" / "SPY_daily_1993-2021.csv"
ROWS_PER_TICKER = 8_000


def generated_ohlcv(tickers: int, rows: int = ROWS_PER_TICKER, seed: int = 0) -> pl.DataFrame:
    """A universe of seeded random walks on weekdays: ticker, date, open, high, low, close, volume."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, (tickers, rows)), axis=1))
    open_ = close * np.exp(rng.normal(0, 0.003, (tickers, rows)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, (tickers, rows))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, (tickers, rows))))
    volume = rng.lognormal(15, 0.5, (tickers, rows))
    days = pl.date_range(dt.date(1990, 1, 1), dt.date(2060, 1, 1), eager=True)
    days = days.filter(days.dt.weekday() <= 5).head(rows)
    return pl.DataFrame(
        {
            "ticker": np.repeat([f"T{i:04d}" for i in range(tickers)], rows),
            "date": pl.concat([days] * tickers),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median wall ms, min wall ms and median CPU ms of ``repeats`` calls (after one warm-up)."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        walls.append((time.perf_counter() - w0) * 1e3)
        cpus.append((time.process_time() - c0) * 1e3)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def verdict(value: float, target: float) -> str:
    return f"{'PASS' if value < target else 'MISS'} (target < {target:g})"


def load_spy(path: Path) -> tuple[pl.DataFrame, str]:
    if path.is_file():
        frame = pl.read_csv(path, try_parse_dates=True).select(
            pl.col("date").cast(pl.Date),
            *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
        )
        return frame, f"{path.name} ({frame.height:,} rows)"
    frame = generated_ohlcv(1).drop("ticker")
    return frame, f"generated series ({frame.height:,} rows; {path} not found)"


def bench_single(spy: pl.DataFrame, data_dir: Path, repeats: int) -> pl.DataFrame:
    save_raw(data_dir, "SPY", RawSeries(spy, "benchmark", True), name="SPY", min_rows=1)
    path = raw_path(data_dir, "SPY")
    print(f"\n1. One ticker, raw Parquet -> features (median of {repeats})")
    print(f"   {'tier':5} {'median ms':>10} {'min ms':>8} {'cpu ms':>8}  verdict")
    built = None
    for tier, target in (("a20", 50.0), ("a50", 100.0)):
        median, best, cpu = timed(lambda t=tier: build_features(pl.read_parquet(path), t), repeats)
        print(f"   {tier:5} {median:10.1f} {best:8.1f} {cpu:8.1f}  {verdict(median, target)}")
        if tier == "a20":
            built = build_features(pl.read_parquet(path), "a20")
    assert built is not None
    return built


def _run(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall and CPU seconds of one call, and what it returned."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - w0, time.process_time() - c0, result


def bench_universe(sizes: list[int], repeats: int) -> None:
    print(f"\n2. Universe of generated tickers x 8,000 rows, one lazy pass (median of {repeats} runs; "
          "with TA-Lib the two sides alternate)")
    print(
        f"   {'tier':5} {'tickers':>7} {'rows':>10} {'wall s':>7} {'cpu s':>6} "
        f"{'Mrows/s':>8} {'ms/ticker':>9}  verdict"
    )
    talib = talib_or_none()
    for tier in ("a20", "a50"):
        for n in sizes:
            universe = generated_ohlcv(n)
            side = talib if tier == "a20" else None
            ours: list[tuple[float, float]] = []  # (wall s, cpu s) of each run
            theirs: list[tuple[float, float]] = []
            out = frame = None
            for _ in range(repeats):
                # Only the last run's frames are kept, and the previous ones are let go before a
                # run: holding every run's (1-2 GB each at 500 tickers) would make each later run
                # fault in fresh memory, a cost no single build pays.
                out = None
                *timing, out = _run(lambda: build_features(universe.lazy(), tier))
                ours.append(tuple(timing))
                if side is not None:
                    frame = None
                    *timing, frame = _run(lambda: talib_a20(side, universe, tier_warmup(tier)))
                    theirs.append(tuple(timing))
            wall = statistics.median(r[0] for r in ours)
            cpu = statistics.median(r[1] for r in ours)
            note = verdict(wall, 5.0) if n == 500 else ""
            print(
                f"   {tier:5} {n:7d} {universe.height:10,d} {wall:7.2f} {cpu:6.2f} "
                f"{universe.height / wall / 1e6:8.2f} {wall / n * 1e3:9.1f}  {note}"
                f"  (runs: {' '.join(f'{r[0]:.2f}' for r in ours)})"
            )
            assert out.height == n * (ROWS_PER_TICKER - tier_warmup(tier))
            if theirs:
                t_wall = statistics.median(r[0] for r in theirs)
                t_cpu = statistics.median(r[1] for r in theirs)
                print(
                    f"   {'':5} {'TA-Lib':>7} {universe.height:10,d} {t_wall:7.2f} {t_cpu:6.2f} "
                    f"{universe.height / t_wall / 1e6:8.2f} {t_wall / n * 1e3:9.1f}  "
                    f"fintrain / TA-Lib {wall / t_wall:.2f}x"
                    + (f" {'PASS' if wall <= 1.5 * t_wall else 'MISS'} (target <= 1.5x)"
                       if n == 500 else "")
                    + f"  (runs: {' '.join(f'{r[0]:.2f}' for r in theirs)})"
                )
                print(f"   {'':5} same frame as fintrain's: largest difference on the later half of "
                      f"each ticker {compare_talib(out, frame)}")
            del universe, out, frame
    if talib is None:
        print("   (TA-Lib is not installed, so no side-by-side row: pip install -e '.[bench]')")


def talib_or_none():
    """The ``talib`` module when TA-Lib is installed (the ``bench`` extra), else None."""
    try:
        import talib
    except ImportError:
        return None
    return talib


def talib_a20(talib, universe: pl.DataFrame, warmup: int) -> pl.DataFrame:
    """fintrain's a20 frame, computed the way a TA-Lib user would: a loop over tickers of C calls.

    The same 20 columns with the same normalisation (ratios to close, %b, the OBV z-score, the
    A/D oscillator over mean volume, VWAP), the weekly RSI and StochRSI from completed weeks
    (numpy picks the weeks' last closes and maps each day to the week before its own), and the
    same warm-up rows dropped, assembled into one frame: the same result, so the two times
    compare the same work. TA-Lib seeds its averages with an SMA where Polars starts from the
    first value; the difference decays with the warm-up (``compare_talib`` measures it).
    """
    names = feature_names("a20")
    cols = {c: universe[c].to_numpy() for c in ("high", "low", "close", "volume")}
    days = universe["date"].cast(pl.Int32).to_numpy()
    starts = np.flatnonzero(universe["ticker"].rle_id().diff().fill_null(1).to_numpy())
    bounds = [*starts, universe.height]
    out: dict[str, list[np.ndarray]] = {name: [] for name in names}
    sample_sd = math.sqrt(20 / 19)  # TA-Lib's STDDEV is the population one; fintrain's ddof 1
    for a, b in zip(bounds[:-1], bounds[1:]):
        h, lo, c, v = (cols[k][a:b] for k in ("high", "low", "close", "volume"))
        f: dict[str, np.ndarray] = {}
        for n in (9, 20, 50, 100, 200):
            f[f"sma_ratio_{n}"] = c / talib.SMA(c, n) - 1.0
        for n in (9, 20, 50, 100):
            f[f"dema_ratio_{n}"] = c / talib.DEMA(c, n) - 1.0
        f["rsi_14"] = talib.RSI(c, 14)
        f["stoch_rsi_14"] = talib.STOCHRSI(c, 14, 14, 1)[0] / 100.0
        # Weekly bars: the last close of each calendar week (Monday start; 1970-01-01 was a
        # Thursday); a day sees the RSI of the week before its own.
        week = (days[a:b] + 3) // 7
        new_week = np.empty(len(week), dtype=bool)
        new_week[0] = True
        np.not_equal(week[1:], week[:-1], out=new_week[1:])
        last = np.append(np.flatnonzero(new_week[1:]), len(week) - 1)
        weekly_close = np.ascontiguousarray(c[last])
        previous = np.cumsum(new_week) - 2  # the day's week index - 1
        seen = previous >= 0
        for name, weekly in (("rsi_14_w", talib.RSI(weekly_close, 14)),
                             ("stoch_rsi_14_w", talib.STOCHRSI(weekly_close, 14, 14, 1)[0] / 100.0)):
            f[name] = np.where(seen, weekly[np.maximum(previous, 0)], np.nan)
        f["macd_rel"] = talib.MACD(c, 12, 26, 9)[0] / c
        obv_change = np.diff(talib.OBV(c, v), prepend=np.nan)
        f["obv_z_20"] = (obv_change - talib.SMA(obv_change, 20)) / (
            talib.STDDEV(obv_change, 20) * sample_sd)
        f["ad_osc_rel"] = talib.ADOSC(h, lo, c, v, 3, 10) / talib.SMA(v, 20)
        f["atr_rel_14"] = talib.ATR(h, lo, c, 14) / c
        f["adx_14"] = talib.ADX(h, lo, c, 14)
        upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0)
        f["bb_pctb_20"] = (c - lower) / (upper - lower)
        typical = (h + lo + c) / 3.0
        f["vwap_ratio_20"] = c / (talib.SUM(typical * v, 20) / talib.SUM(v, 20)) - 1.0
        for name in names:
            out[name].append(f[name][warmup:])
    keep = np.ones(universe.height, dtype=bool)
    for a in starts:
        keep[a:a + warmup] = False
    frame = universe.filter(pl.Series(keep)).select("date", "ticker", *OHLCV)
    return frame.with_columns(pl.Series(name, np.concatenate(out[name])) for name in names)


def compare_talib(ours: pl.DataFrame, theirs: pl.DataFrame) -> str:
    """The largest difference between the two frames' features on the later half of each
    ticker's rows, where the averages' seeds no longer matter (worst three features)."""
    half = pl.int_range(pl.len()).over("ticker") >= pl.len().over("ticker") // 2
    names = feature_names("a20")
    a, b = ours.filter(half), theirs.filter(half)
    assert a.select("ticker", "date").equals(b.select("ticker", "date"))
    worst = sorted(((float((a[n] - b[n]).abs().max()), n) for n in names), reverse=True)[:3]
    return ", ".join(f"{n} {d:.1e}" for d, n in worst)


def bench_windows(features: pl.DataFrame, repeats: int) -> None:
    print("\n3. Windows for SPY a20, context 60, on the CPU")
    columns = feature_names("a20")
    target, split = TargetConfig(), SplitConfig(context_len=60)
    median, best, cpu = timed(
        lambda: build_dataset(features, target, split, feature_columns=columns), repeats
    )
    print(
        f"   build_dataset: median {median:.2f} ms, min {best:.2f} ms, cpu {cpu:.2f} ms  "
        f"{verdict(median, 20.0)}"
    )
    ds = build_dataset(features, target, split, feature_columns=columns)
    train = ds.train
    batches = train.batch_indices(256, shuffle=True, seed=0, epoch=0)
    idx = batches[0]
    starts = train.ends[idx] - 59
    x, _ = train.gather(idx)
    assert torch.equal(x, train.windows[starts])
    threads = torch.get_num_threads()
    print(f"   gather of 256 windows -> x {tuple(x.shape)} {x.dtype} (median of {repeats * 20})")
    for label, fn, judged in (
        ("WindowSet.gather (index_select of the view)", lambda: train.gather(idx), True),
        ("advanced indexing of the view", lambda: train.windows[starts], False),
        ("index_select of B x L rows of (T, C)", lambda: rows_gather(train, starts), False),
    ):
        for n_threads in sorted({threads, 1}, reverse=True):
            torch.set_num_threads(n_threads)
            median, best, _ = timed(fn, repeats * 20)
            note = verdict(median, 1.0) if judged else ""
            print(
                f"   {label:40} {n_threads} thread(s): median {median:.3f} ms, "
                f"min {best:.3f} ms  {note}"
            )
    torch.set_num_threads(threads)
    epoch = timed(lambda: [train.gather(b) for b in train.batch_indices(256, True, 0, 1)], 5)
    print(
        f"   a whole training epoch of gathers ({len(train):,} windows, "
        f"{len(batches)} batches): median {epoch[0]:.1f} ms"
    )


def rows_gather(train, starts: torch.Tensor) -> torch.Tensor:
    """The alternative to gathering windows: B x L rows of the (T, C) tensor, reshaped."""
    rows = (starts.unsqueeze(1) + torch.arange(train.context_len)).reshape(-1)  # (B * L,)
    return train.features.index_select(0, rows).view(len(starts), train.context_len, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spy", type=Path, default=DEFAULT_SPY, help="SPY daily CSV.")
    parser.add_argument("--tickers", default="50,100,500", help="Universe sizes to time.")
    parser.add_argument("--repeats", type=int, default=15, help="Timed runs per figure.")
    parser.add_argument("--universe-repeats", type=int, default=3,
                        help="Runs per universe size (the median is printed).")
    args = parser.parse_args()

    print(
        f"fintrain feature benchmark: polars {pl.__version__}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, polars threads {pl.thread_pool_size()}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    spy, label = load_spy(args.spy)
    print(f"SPY data: {label}")
    with tempfile.TemporaryDirectory() as tmp:
        features = bench_single(spy, Path(tmp), args.repeats)
    bench_universe([int(n) for n in args.tickers.split(",") if n], args.universe_repeats)
    bench_windows(features, args.repeats)
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
