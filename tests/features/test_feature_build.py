"""Building tiers: no look-ahead, finite values, per-ticker builds, the registry and its hash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from fintrain.errors import ConfigError, FeatureError
from fintrain.features import (
    TIERS,
    build_features,
    feature_names,
    get_tier,
    tier_hash,
    tier_warmup,
    tiers,
)

SYNTHETIC_ROWS = 875  # the `synthetic` fixture's height


def test_tiers_have_twenty_and_fifty_distinct_features() -> None:
    assert len(feature_names("a20")) == 20
    assert len(feature_names("a50")) == 50
    assert len(set(feature_names("a50"))) == 50
    assert feature_names("a50")[:20] == feature_names("a20")


def test_synthetic_fixture_height(synthetic: pl.DataFrame) -> None:
    assert synthetic.height == SYNTHETIC_ROWS


def test_unknown_tier_names_itself_and_the_known_tiers(synthetic: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"'a99'.*a20, a50"):
        feature_names("a99")
    with pytest.raises(ConfigError, match="a99"):
        build_features(synthetic, "a99")


@settings(max_examples=12)
@given(cut=st.integers(min_value=tier_warmup("a50") + 1, max_value=SYNTHETIC_ROWS - 1))
def test_no_look_ahead_features_of_a_prefix_equal_the_full_build(
    cut: int, synthetic: pl.DataFrame
) -> None:
    full = build_features(synthetic, "a50")
    prefix = build_features(synthetic.head(cut), "a50")
    assert prefix.height == cut - tier_warmup("a50")
    assert_frame_equal(prefix, full.head(prefix.height))


def test_changing_a_future_row_leaves_past_features_unchanged(synthetic: pl.DataFrame) -> None:
    k = 700
    changed = synthetic.with_columns(
        pl.when(pl.int_range(pl.len()) >= k).then(pl.col(c) * 3).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "volume")
    )
    before = build_features(synthetic, "a50")
    after = build_features(changed, "a50")
    cutoff = synthetic["date"][k]
    assert_frame_equal(before.filter(pl.col("date") < cutoff), after.filter(pl.col("date") < cutoff))
    assert not before.filter(pl.col("date") >= cutoff).equals(after.filter(pl.col("date") >= cutoff))


def test_weekly_features_use_completed_weeks_only(synthetic: pl.DataFrame) -> None:
    built = build_features(synthetic, "a20")
    weekly = built.with_columns(week=pl.col("date").dt.truncate("1w"))
    # Inside a week the weekly value does not move: this week's days are not in it yet.
    assert weekly.group_by("week").agg(pl.col("rsi_14_w").n_unique())["rsi_14_w"].max() == 1


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_real_msft_data_gives_finite_features(tier: str, msft: pl.DataFrame) -> None:
    built = build_features(msft, tier)
    values = built.select(feature_names(tier))
    assert values.null_count().sum_horizontal()[0] == 0
    assert values.select(pl.all().is_finite().all()).row(0) == (True,) * len(feature_names(tier))
    assert built.height == 3270 - tier_warmup(tier)


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_shared_spy_file_gives_finite_features(tier: str, spy_csv: Path) -> None:
    spy = pl.read_csv(spy_csv, try_parse_dates=True).select(
        pl.col("date").cast(pl.Date), *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume"))
    )
    values = build_features(spy, tier).select(feature_names(tier))
    assert values.select(pl.all().is_finite().all()).row(0) == (True,) * len(feature_names(tier))


def test_a_lazy_frame_builds_the_same_as_an_eager_one(synthetic: pl.DataFrame) -> None:
    assert_frame_equal(build_features(synthetic.lazy(), "a20"), build_features(synthetic, "a20"))


def test_many_tickers_in_one_frame_equal_separate_builds(make_ohlcv) -> None:
    # Not in alphabetical order: the build's per-ticker groups must follow the frame's order.
    parts = {
        "ZZZ": make_ohlcv(700, seed=1),
        # A much higher price level: a window leaking across tickers would show.
        "AAA": make_ohlcv(650, seed=2).with_columns(pl.col("open", "high", "low", "close") * 40),
        "MMM": make_ohlcv(800, seed=4),
    }
    universe = pl.concat(
        [p.with_columns(ticker=pl.lit(t)) for t, p in parts.items()]
    ).select("ticker", "date", "open", "high", "low", "close", "volume")
    together = build_features(universe.lazy(), "a50")
    assert together["ticker"].unique(maintain_order=True).to_list() == list(parts)
    # Split into one query per ticker, the result is the same.
    assert_frame_equal(build_features(universe, "a50", tickers_per_query=1), together)
    for ticker, part in parts.items():
        alone = build_features(part, "a50")
        mine = together.filter(pl.col("ticker") == ticker).drop("ticker")
        assert_frame_equal(mine, alone, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


# Names of Polars' recursive operations in a serialised expression. The build does not search
# for them (Polars does not keep the serialised form stable across versions); this test checks
# with them that the tiers' explicit ``recursive`` flags are right under the installed Polars.
_RECURSIVE_OPS = ('"EwmMean"', '"EwmStd"', '"EwmVar"', '"CumSum"', '"CumProd"', '"CumMin"', '"CumMax"')


def _carries_state(expr: pl.Expr) -> bool:
    text = expr.meta.serialize(format="json")
    return any(op in text for op in _RECURSIVE_OPS)


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_recursive_flags_mark_exactly_the_expressions_that_carry_state(tier: str) -> None:
    assert _carries_state(pl.col("close").ewm_mean(span=3)) and not _carries_state(pl.col("close").rolling_mean(3))
    for feature in get_tier(tier):
        assert feature.recursive == _carries_state(feature.expr), feature.name
        for helper in feature.helpers:
            assert helper.recursive == _carries_state(helper.expr), f"{feature.name}: {helper.name}"


def test_unsorted_rows_are_refused(synthetic: pl.DataFrame) -> None:
    shuffled = synthetic.sample(fraction=1.0, seed=0, shuffle=True)
    with pytest.raises(FeatureError, match="sorted by date"):
        build_features(shuffled, "a20")


def test_repeated_dates_are_refused(synthetic: pl.DataFrame) -> None:
    doubled = pl.concat([synthetic.head(600), synthetic.slice(599, 1), synthetic.slice(600)])
    with pytest.raises(FeatureError, match="no repeated date"):
        build_features(doubled, "a20")


def test_missing_columns_are_named(synthetic: pl.DataFrame) -> None:
    with pytest.raises(FeatureError, match="missing column.*volume"):
        build_features(synthetic.drop("volume"), "a20")


def test_nonpositive_prices_are_reported_not_silently_written(synthetic: pl.DataFrame) -> None:
    broken = synthetic.with_columns(
        pl.when(pl.int_range(pl.len()) == 800).then(0.0).otherwise(pl.col("low")).alias("low")
    )
    with pytest.raises(FeatureError, match="not finite"):
        build_features(broken, "a50")


def test_tier_hash_is_the_same_in_every_process() -> None:
    """Stored builds are checked by a later process: the hash must not depend on str hashing."""
    here = tier_hash("a20")
    code = "from fintrain.features import tier_hash; print(tier_hash('a20'))"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == here


def test_tier_hash_follows_the_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tier_hash("a20") != tier_hash("a50")
    before = tier_hash("a20")
    changed = (*tiers.A20[:4], tiers.sma_ratio(150), *tiers.A20[5:])
    monkeypatch.setitem(tiers.TIERS, "a20", changed)
    assert tier_hash("a20") != before


def test_a_ticker_split_in_two_blocks_is_refused(make_ohlcv) -> None:
    a = make_ohlcv(1400, seed=1).with_columns(ticker=pl.lit("A"))
    b = make_ohlcv(700, seed=2).with_columns(ticker=pl.lit("B"))
    scattered = pl.concat([a.head(700), b, a.slice(700)])
    with pytest.raises(FeatureError, match="contiguous"):
        build_features(scattered, "a20")


def test_rows_without_a_ticker_are_refused(make_ohlcv) -> None:
    universe = pl.concat(
        [make_ohlcv(600, seed=1).with_columns(ticker=pl.lit("AAA")),
         make_ohlcv(600, seed=2).with_columns(ticker=pl.lit(None, dtype=pl.String))]
    )
    missing = universe["ticker"].null_count()
    assert missing > 0
    # Not built as a ticker named null: refused, with the count, before any work.
    with pytest.raises(FeatureError, match=rf"^{missing} row\(s\) have no ticker"):
        build_features(universe, "a20")
    with pytest.raises(FeatureError, match="have no ticker"):
        build_features(universe, "a20", tickers_per_query=0)
