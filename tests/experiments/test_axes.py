"""The per-axis study: intervals over seeds and test dates, the fit, baseline bands, the paired
test against the baselines, and the axes of context length and data fraction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fintrain.experiments.axes import Group, aligned_windows, axis_study, seed_mix
from fintrain.experiments.report import build_report, markdown
from fintrain.experiments.runs import list_runs, read_predictions, read_run

SIZES = {"50k": 50_000, "100k": 100_000, "300k": 300_000, "1m": 1_000_000, "2m": 2_000_000}
N_TEST = 240


def _scores_for_losses(labels: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Probabilities whose per-window log loss is exactly ``losses`` (and rank the windows well)."""
    return np.where(labels == 1, np.exp(-losses), 1.0 - np.exp(-losses))


def _sweep(root, write_run, write_predictions, curve, seeds=3, seed_noise=0.01, baselines=None, **facts):
    """Runs of five sizes whose per-window test losses are curve(N) x a factor shared by every
    run (the hard test dates are hard for every model), plus a little seed noise."""
    rng = np.random.default_rng(5)
    labels = (rng.random(N_TEST) < 0.3).astype(float)
    hard = rng.gamma(4.0, 0.25, N_TEST)  # shared by every run: the paired part of the noise
    for budget, params in SIZES.items():
        for seed in range(seeds):
            losses = curve(params) * hard * (1 + rng.normal(0.0, seed_noise)) + rng.normal(0.0, 0.01, N_TEST).clip(-0.05, 0.05)
            losses = losses.clip(0.01, 5.0)
            p = _scores_for_losses(labels, losses)
            run = write_run(root, f"s-{budget}-seed{seed}", budget=budget, seed=seed, params=params,
                            test=0.6, test_loss=float(losses.mean()), **facts)
            write_predictions(run, labels, p, baselines(labels, rng) if baselines else
                              {"logistic": np.full(N_TEST, 0.3), "gbdt": rng.random(N_TEST)})
    return root


def test_seed_mix_and_the_interval_of_two_constant_seeds():
    # Two seeds whose loss is 0.5 and 0.7 on every window: a resample's mean over two drawn seeds is
    # 0.5, 0.6 or 0.7 with probabilities 1/4, 1/2, 1/4, so the 95% interval is 0.5 .. 0.7 around 0.6.
    mixed = seed_mix([np.full(4000, 0.5), np.full(4000, 0.7)], np.random.default_rng(0))
    assert set(np.round(mixed, 9)) == {0.5, 0.6, 0.7}
    assert np.mean(mixed == 0.6) == pytest.approx(0.5, abs=0.03)


def test_per_value_table_combines_seeds_and_test_dates(tmp_path, write_run, write_predictions):
    labels = np.tile([1.0, 0.0, 0.0, 1.0], 30)
    for seed, loss in enumerate((0.3, 0.5)):
        run = write_run(tmp_path, f"c-2m-seed{seed}", seed=seed, test=1.0, test_loss=loss)
        write_predictions(run, labels, _scores_for_losses(labels, np.full(labels.size, loss)),
                          {"logistic": np.full(labels.size, 0.5)})
    runs = list_runs(tmp_path)
    predictions = {r.name: read_predictions(r.path) for r in runs}
    study = axis_study("size", [Group("2m", 2e6, tuple(runs))], "threshold", predictions, resamples=400)
    (row,) = study.rows
    # Worked example: the windows' loss is constant per seed, so only the seed draw moves the mean.
    # (As in the seed_mix example: the mean over two drawn seeds is 0.3, 0.4 or 0.5.)
    assert row.loss.mean == pytest.approx(0.4) and (row.loss.low, row.loss.high) == pytest.approx((0.3, 0.5))
    assert row.loss_per_seed == pytest.approx((0.3, 0.5))
    assert row.metric.mean == 1.0 and (row.metric.low, row.metric.high) == (1.0, 1.0)  # every window ranked right
    assert "resamples of the seeds and of 20-day blocks of the 120 test dates" in study.method
    # One seed: the interval comes from the dates alone, and now they matter.
    varied = np.linspace(0.2, 1.4, labels.size)
    run = write_run(tmp_path / "one", "d-2m-seed0", test=1.0)
    write_predictions(run, labels, _scores_for_losses(labels, varied), {"logistic": np.full(labels.size, 0.5)})
    one = read_run(run)
    single = axis_study("size", [Group("2m", 2e6, (one,))], "threshold", {one.name: read_predictions(run)},
                        resamples=400).rows[0]
    assert single.loss.mean == pytest.approx(varied.mean())
    assert single.loss.low < varied.mean() < single.loss.high and single.loss.high - single.loss.low > 0.1


def test_alpha_is_recovered_through_the_report_with_test_date_blocks(tmp_path, write_run, write_predictions):
    _sweep(tmp_path, write_run, write_predictions, lambda n: 0.45 + 0.35 * (n / 50_000) ** -0.3)
    report = build_report(list_runs(tmp_path), resamples=200)
    (size,) = report.axes
    fit = size.fit
    assert fit.alpha_ci[0] < 0.3 < fit.alpha_ci[1] and fit.alpha_ci[0] > 0
    assert fit.method == "seeds and 20-day blocks of test dates"
    assert fit.verdict.startswith("loss falls with size: α = ")
    assert [r.label for r in size.rows] == list(SIZES) and all(r.loss.has_interval for r in size.rows)
    # Each row's interval holds its mean; the losses fall with size.
    means = [r.loss.mean for r in size.rows]
    assert means == sorted(means, reverse=True)
    assert all(r.loss.low <= r.loss.mean <= r.loss.high for r in size.rows)
    document = report.to_json()
    assert document["axes"][0]["fit"]["alpha_ci"] == list(fit.alpha_ci)
    assert document["axes"][0]["values"][0]["test_loss"]["mean"] == pytest.approx(means[0])


def test_flat_losses_are_no_detectable_scaling(tmp_path, write_run, write_predictions):
    _sweep(tmp_path, write_run, write_predictions, lambda n: 0.62, seed_noise=0.02)
    (size,) = build_report(list_runs(tmp_path), resamples=200).axes
    assert size.fit.alpha_ci[0] <= 0 <= size.fit.alpha_ci[1]
    assert size.fit.verdict.startswith("no detectable scaling: the interval for α includes 0")


def test_smallest_size_better_than_each_baseline(tmp_path, write_run, write_predictions):
    rng = np.random.default_rng(2)
    labels = (rng.random(N_TEST) < 0.4).astype(float)
    noise = rng.normal(0.0, 1.0, N_TEST)
    # Model skill grows with size: 50k and 100k score what logistic scores (plus noise), 300k+ see the labels.
    skill = {"50k": 0.0, "100k": 0.0, "300k": 2.0, "1m": 2.5}
    for budget, params in list(SIZES.items())[:4]:
        for seed in range(2):
            run = write_run(tmp_path, f"b-{budget}-seed{seed}", budget=budget, seed=seed, params=params)
            model = 1 / (1 + np.exp(-(skill[budget] * (labels - 0.5) * 2 + noise + rng.normal(0, 0.3, N_TEST))))
            write_predictions(run, labels, model, {
                "logistic": 1 / (1 + np.exp(-noise)),          # no skill: AUC about 0.5
                "gbdt": 0.05 + 0.9 * labels,                    # perfect ranking: nothing beats it
            })
    report = build_report(list_runs(tmp_path), resamples=200)
    (size,) = report.axes
    verdicts = {(c.label, c.baseline): c.verdict for c in size.checks}
    assert verdicts[("50k", "logistic")] == verdicts[("100k", "logistic")] == "indistinguishable"
    assert verdicts[("300k", "logistic")] == verdicts[("1m", "logistic")] == "better"
    assert verdicts[("50k", "gbdt")] == "worse" and "better" not in {verdicts[(b, "gbdt")] for b in ("300k", "1m")}
    assert size.smallest_better == {"logistic": "300k", "gbdt": None}
    smallest = "300k"
    assert f"smallest size better than logistic by the paired test: {smallest}" in size.smallest_sentences()
    assert "smallest size better than gbdt by the paired test: none" in size.smallest_sentences()
    assert report.to_json()["smallest_better"] == {"logistic": smallest, "gbdt": None}
    assert "- Smallest size better than gbdt by the paired test: none." in markdown(report)
    # The bands: each learned baseline's test AUC over the largest size's runs.
    assert size.band_from == "1m" and size.bands["gbdt"]["metric"].mean == pytest.approx(1.0)


def test_context_and_fraction_axes_hold_the_others_at_their_largest(tmp_path, write_run):
    for ctx in (30, 60, 120):
        for fraction in (0.5, 1.0):
            for budget, params in (("50k", 50_000), ("2m", 2_000_000)):
                run = write_run(tmp_path, f"x-{budget}-ctx{ctx}-frac{fraction:g}-seed0", budget=budget, params=params,
                                test=0.5 + 0.01 * (ctx / 30) + 0.02 * fraction, test_loss=0.7 - 0.01 * ctx / 30)
                stored = json.loads((run / "config.json").read_text())
                stored["split"].update(context_len=ctx, data_fraction=fraction)
                (run / "config.json").write_text(json.dumps(stored))
    report = build_report(list_runs(tmp_path), resamples=200)
    assert [a.axis for a in report.axes] == ["size", "context", "fraction"]
    size, context, fraction = report.axes
    assert size.held == {"context_len": 120, "data_fraction": 1.0} and [r.label for r in size.rows] == ["50k", "2m"]
    assert context.held == {"budget": "2m", "data_fraction": 1.0} and [r.label for r in context.rows] == ["30", "60", "120"]
    assert fraction.held == {"budget": "2m", "context_len": 120} and [r.x for r in fraction.rows] == [0.5, 1.0]
    assert context.fit.verdict == "no fit: 3 distinct context length values; E + A·x^-α has 3 parameters and needs at least 4"
    assert "predictions.parquet missing" in context.method  # made before runs kept predictions
    # Points are labelled by every axis that varies; a size is compared with the next smaller one
    # at the same context and fraction only.
    assert "2m ctx120 frac0.5" in [b.label for b in report.budgets]
    smaller = {(c.subject, c.against) for c in report.comparisons if c.kind == "budget"}
    assert ("2m ctx30 frac0.5", "50k ctx30 frac0.5") in smaller and len(smaller) == 6
    text = markdown(report)
    assert "### Context length axis (size 2m, data fraction 1)" in text
    assert "### Data fraction axis (size 2m, context 120 rows)" in text


def test_runs_without_predictions_or_the_new_fields_are_reported(tmp_path, write_run):
    """Folders written before predictions.parquet and split.data_fraction existed still report."""
    for budget, params in (("50k", 50_000), ("100k", 100_000)):
        for seed in range(2):
            run = write_run(tmp_path, f"old-{budget}-seed{seed}", budget=budget, seed=seed, params=params,
                            test=0.55 + 0.01 * seed, baselines={"logistic": {"auc": 0.52, "log_loss": 0.66},
                                                                "gbdt": {"auc": 0.51, "log_loss": 0.67}})
            stored = json.loads((run / "config.json").read_text())
            del stored["split"]["data_fraction"]
            (run / "config.json").write_text(json.dumps(stored))
    report = build_report(list_runs(tmp_path), resamples=200)
    (size,) = report.axes
    assert [r.label for r in size.rows] == ["50k", "100k"] and size.rows[0].metric.mean == pytest.approx(0.555)
    assert size.bands["logistic"]["metric"].mean == pytest.approx(0.52)
    assert size.checks[0].verdict in ("better", "worse", "indistinguishable")
    assert size.method.startswith("95% Student-t intervals over seeds; test dates not resampled")


def test_aligned_windows_keep_the_windows_every_run_has(tmp_path, write_run, write_predictions):
    a = write_run(tmp_path, "a")
    b = write_run(tmp_path, "b")
    write_predictions(a, [1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], {})
    write_predictions(b, [1, 0, 1], [0.7, 0.3, 0.6], {})  # one window short
    dates, (fa, fb) = aligned_windows([read_predictions(a), read_predictions(b)], "test")
    assert dates.size == 3 and fa["PatchTST"].to_list() == [0.9, 0.1, 0.8] and fb["label"].to_list() == [1, 0, 1]
