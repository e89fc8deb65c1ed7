"""The report's numbers and words on hand-made run summaries."""

from __future__ import annotations

import json

import pytest

from fintrain.experiments.report import (
    ReportError,
    build_report,
    markdown,
    write_report,
)
from fintrain.experiments.runs import list_runs

LOGISTIC_BEST = {
    "base_rate": {"auc": 0.5}, "always_up": {"auc": 0.5}, "logistic": {"auc": 0.52},
}


@pytest.fixture
def sweep(tmp_path, write_run):
    for budget, params, values in (("2m", 1_985_025, [0.53, 0.55, 0.54]), ("20m", 18_912_769, [0.56, 0.58, 0.57])):
        for seed, value in enumerate(values):
            write_run(tmp_path, f"s-{budget}-seed{seed}", budget=budget, seed=seed, params=params, test=value,
                      baselines=LOGISTIC_BEST)
    return tmp_path


def test_budget_means_intervals_and_comparisons(sweep):
    report = build_report(list_runs(sweep))
    assert report.metric == "auc" and report.higher_is_better and report.best_baseline == "logistic"
    small, large = report.budgets  # ordered by parameter count
    assert (small.budget, small.params, large.budget) == ("2m", 1_985_025, "20m")
    # mean 0.54, s 0.01, n 3: half width t(0.975, 2) * 0.01 / sqrt(3) = 0.024841
    assert small.interval.estimate == pytest.approx(0.54)
    assert (small.interval.low, small.interval.high) == pytest.approx((0.515159, 0.564841), abs=1e-6)
    by = {(c.subject, c.against): c for c in report.comparisons}
    # 2m - logistic per seed: 0.01, 0.03, 0.02: interval holds zero.
    c = by[("2m", "logistic")]
    assert c.difference.estimate == pytest.approx(0.02)
    assert c.difference.low == pytest.approx(-0.004841, abs=1e-6) and c.verdict == "no difference"
    assert "not distinguishable from the logistic baseline" in c.sentence
    # 20m - logistic: 0.05 +- 0.024841, above zero.
    c = by[("20m", "logistic")]
    assert c.verdict == "better" and c.difference.low == pytest.approx(0.025159, abs=1e-6)
    assert c.sentence.startswith("20m beats the logistic baseline beyond seed noise")
    # 20m - 2m (Welch): 0.03, se sqrt(2 * 0.0001 / 3), df 4 -> t 2.776445: [0.007330, 0.052670]
    c = by[("20m", "2m")]
    assert c.kind == "budget" and c.difference.df == pytest.approx(4.0)
    assert (c.difference.low, c.difference.high) == pytest.approx((0.007330, 0.052670), abs=1e-6)
    assert c.verdict == "better" and "20m improves on 2m beyond seed noise" in c.sentence
    assert ("2m", "20m") not in by  # the smallest budget has nothing smaller to beat


def test_lower_is_better_metric_is_oriented(tmp_path, write_run):
    baselines = {"zero_return": {"mse": 0.0105}, "train_mean": {"mse": 0.0104}, "linear": {"mse": 0.0110}}
    for budget, values in (("2m", [0.0100, 0.0101]), ("20m", [0.0130, 0.0131])):
        for seed, value in enumerate(values):
            write_run(tmp_path, f"r-{budget}-seed{seed}", task="return", budget=budget, seed=seed, test=value,
                      params=2_000_000 if budget == "2m" else 20_000_000, baselines=baselines)
    report = build_report(list_runs(tmp_path))
    assert report.metric == "mse" and not report.higher_is_better
    assert report.best_baseline == "train_mean"  # the lowest mse
    by = {(c.subject, c.against): c for c in report.comparisons}
    worse = by[("20m", "2m")]
    assert worse.difference.estimate == pytest.approx(0.003)  # a higher mse: worse
    assert worse.verdict == "worse" and "20m is worse than 2m beyond seed noise" in worse.sentence
    better = by[("2m", "train_mean")]
    assert better.difference.estimate == pytest.approx(-0.00035)
    # Two seeds 0.0001 apart: t(1) = 12.7 makes the interval [-0.00099, 0.00029], which holds zero.
    assert better.verdict == "no difference"


def test_one_seed_says_it_cannot_tell(tmp_path, write_run):
    write_run(tmp_path, "a-2m-seed0", budget="2m", test=0.60)
    write_run(tmp_path, "a-20m-seed0", budget="20m", params=18_912_769, test=0.61)
    report = build_report(list_runs(tmp_path))
    assert {c.verdict for c in report.comparisons} == {"unknown"}
    assert all("one seed" in c.sentence and "--seeds 3" in c.sentence for c in report.comparisons)
    assert not report.budgets[0].interval.has_interval


def test_unfinished_runs_are_left_out_and_named(tmp_path, write_run):
    write_run(tmp_path, "s-2m-seed0", test=0.55)
    write_run(tmp_path, "s-2m-seed1", seed=1, status="thermal_stop")
    report = build_report(list_runs(tmp_path))
    assert [r.name for r in report.left_out] == ["s-2m-seed1"]
    assert len(report.budgets[0].runs) == 1
    assert "Not included (not finished): s-2m-seed1 (stopped (thermal))" in markdown(report)


def test_nothing_finished_or_mixed_tasks_are_errors(tmp_path, write_run):
    write_run(tmp_path / "a", "x", status="interrupted")
    with pytest.raises(ReportError, match=r"no finished run to report on; runs: x \(interrupted\)"):
        build_report(list_runs(tmp_path / "a"))
    write_run(tmp_path / "b", "c", task="threshold")
    write_run(tmp_path / "b", "r", task="return", test=0.01, baselines={"zero_return": {"mse": 0.01}})
    with pytest.raises(ReportError, match="mix tasks"):
        build_report(list_runs(tmp_path / "b"))


def test_notes_for_repeated_seeds_and_different_data(tmp_path, write_run):
    write_run(tmp_path, "a", seed=0, ticker="MSFT")
    write_run(tmp_path, "b", seed=0, ticker="SPY")
    notes = " ".join(build_report(list_runs(tmp_path)).notes)
    assert "same seed" in notes and "differ in ticker" in notes


def test_written_files_without_plots(sweep, tmp_path):
    report = build_report(list_runs(sweep))
    files = write_report(report, tmp_path / "out")
    assert [p.name for p in files] == ["report.json", "report.md"]
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["best_baseline"] == "logistic" and document["budgets"][1]["values"] == [0.56, 0.58, 0.57]
    assert document["comparisons"][-1]["verdict"] == "better" and "Student-t intervals over seeds" in document["method"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| 20m | 18.9M | 3 | 0.5700 | 0.5452 .. 0.5948 | 0.5600, 0.5800, 0.5700 |" in md
    assert "| baseline logistic (strongest) |" in md


def test_size_axis_gets_a_power_law_fit_with_a_verdict(tmp_path, write_run):
    # Test loss 0.6 + 0.1 (N / 50k)^-0.3 with a little seed noise, over four sizes.
    noise = [-0.002, 0.0, 0.002]
    for budget, params in (("50k", 50_000), ("100k", 100_000), ("300k", 300_000), ("1m", 1_000_000)):
        for seed, e in enumerate(noise):
            loss = 0.6 + 0.1 * (params / 50_000) ** -0.3 + e * (1 + seed % 2)
            write_run(tmp_path, f"s-{budget}-seed{seed}", budget=budget, seed=seed, params=params,
                      test_loss=loss, baselines=LOGISTIC_BEST)
    report = build_report(list_runs(tmp_path))
    (fit,) = report.scaling
    assert fit.axis == "size" and fit.values == (50_000, 100_000, 300_000, 1_000_000)
    assert fit.alpha == pytest.approx(0.3, abs=0.1) and fit.alpha_ci[0] > 0
    assert fit.verdict.startswith("loss falls with size: α = ")
    document = report.to_json()["scaling"][0]
    assert document["verdict"] == fit.verdict and document["alpha_ci"] == list(fit.alpha_ci)
    assert f"Scaling fit of the test loss (size): {fit.verdict}." in markdown(report)


def test_two_budgets_say_why_there_is_no_fit(sweep):
    (fit,) = build_report(list_runs(sweep)).scaling
    assert not fit.fitted
    assert fit.verdict == "no fit: 2 distinct size values; E + A·x^-α has 3 parameters and needs at least 4"


def test_tuned_rates_are_reported_and_only_the_chosen_rate_counts(tmp_path, write_run):
    # 2m: seed 0 at three rates; validation picks 1e-3 (the middle); its test is the worst, which
    # must not matter. 20m: validation picks 3e-3, the top of the grid: flagged.
    for budget, params, vals, chosen in (("2m", 1_985_025, (0.52, 0.58, 0.55), 0.001),
                                         ("20m", 18_912_769, (0.51, 0.53, 0.57), 0.003)):
        for lr, val in zip((0.0003, 0.001, 0.003), vals):
            test = 0.50 if lr == chosen else 0.65
            write_run(tmp_path, f"t-{budget}-lr{lr:g}-seed0", budget=budget, seed=0, params=params, lr=lr,
                      val=val, test=test, baselines=LOGISTIC_BEST)
        for seed in (1, 2):
            write_run(tmp_path, f"t-{budget}-lr{chosen:g}-seed{seed}", budget=budget, seed=seed, params=params,
                      lr=chosen, val=0.5, test=0.52 + 0.01 * seed, baselines=LOGISTIC_BEST)
    report = build_report(list_runs(tmp_path))
    small, large = report.lr_tuning
    assert (small.budget, small.chosen, small.at_edge) == ("2m", 0.001, False)
    assert small.tried == ((0.0003, 0.52), (0.001, 0.58), (0.003, 0.55))
    assert (large.budget, large.chosen, large.at_edge) == ("20m", 0.003, True)
    assert large.sentence.endswith("best lr at grid edge: widen --lrs")
    assert "budget 20m: best lr at grid edge: widen --lrs" in report.notes
    # Each budget's statistics use its chosen rate's three seeds only.
    assert [len(b.runs) for b in report.budgets] == [3, 3]
    assert report.budgets[0].values == pytest.approx((0.50, 0.53, 0.54))
    document = report.to_json()["lr_tuning"]
    assert document[0]["tried"][1] == {"lr": 0.001, "val_auc": 0.58} and document[1]["at_grid_edge"] is True
    assert "- 2m trains at lr 0.001 (validation, seed 0: 0.0003 0.5200, 0.001 0.5800, 0.003 0.5500)." in markdown(report)


def test_gbdt_row_trading_measures_and_ic_as_mean_and_std_over_seeds(tmp_path, write_run):
    sharpes = [0.4, 0.8]
    for seed, sharpe in enumerate(sharpes):
        run = write_run(tmp_path, f"u-2m-seed{seed}", seed=seed, test=0.55 + 0.01 * seed,
                        baselines={**LOGISTIC_BEST, "gbdt": {"auc": 0.56}})
        summary = json.loads((run / "summary.json").read_text())
        summary["trading"] = {
            "PatchTST": {"ann_return": 0.1 * (seed + 1), "sharpe": sharpe, "max_drawdown": 0.2, "turnover": 0.1},
            "gbdt": {"ann_return": 0.05, "sharpe": 0.3, "max_drawdown": 0.25, "turnover": 0.2},
            "buy_and_hold": {"ann_return": 0.08, "sharpe": 0.5, "max_drawdown": 0.3, "turnover": 0.0},
        }
        summary["ic"] = {"PatchTST": {"ic": 0.02 + 0.02 * seed, "icir": 0.1, "rank_ic": 0.03, "rank_icir": 0.2}}
        (run / "summary.json").write_text(json.dumps(summary))
    report = build_report(list_runs(tmp_path))
    assert report.baselines["gbdt"] == 0.56 and report.best_baseline == "gbdt"
    assert list(report.trading) == ["PatchTST 2m", "buy_and_hold", "gbdt"]
    mean, std, n = report.trading["PatchTST 2m"]["sharpe"]
    assert (mean, n) == (pytest.approx(0.6), 2) and std == pytest.approx(0.2828427, abs=1e-6)  # sd of 0.4, 0.8
    assert report.trading["buy_and_hold"]["sharpe"][:2] == (pytest.approx(0.5), 0.0)
    assert report.ic["PatchTST 2m"]["ic"][:2] == (pytest.approx(0.03), pytest.approx(0.0141421, abs=1e-6))
    text = markdown(report)
    assert "| PatchTST 2m | 2 | 0.1500 ± 0.0707 |" in text  # ann_return of 0.1 and 0.2
    assert "| baseline gbdt (strongest) |" in text
    assert "| PatchTST 2m | 0.0300 ± 0.0141 |" in text
    assert report.to_json()["trading"]["gbdt"]["sharpe"] == {"mean": 0.3, "std": 0.0, "n": 2}
