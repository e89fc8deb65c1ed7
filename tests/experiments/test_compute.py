"""Loss against training compute: samples seen, FLOPs per sample, curves and the frontier."""

from __future__ import annotations

import pytest

from fintrain.experiments.axes import Group
from fintrain.experiments.compute import ComputeCurve, compute_study, flops_per_sample, frontier, samples_seen
from fintrain.experiments.runs import read_run
from fintrain.model import budget_config
from fintrain.model.flops import training_flops_per_sample


def test_samples_seen_counts_whole_epochs_and_the_short_last_batch():
    # 100 windows, batches of 32: an epoch is 4 steps (32, 32, 32, 4).
    assert [samples_seen(s, 100, 32) for s in (1, 3, 4, 5, 7, 8)] == [32, 96, 100, 132, 196, 200]


def test_the_frontier_is_the_lower_envelope_over_compute():
    small = ComputeCurve("50k", 50_000, 1.0, ((1.0, 0.70), (2.0, 0.65), (4.0, 0.64)), 1)
    large = ComputeCurve("2m", 2_000_000, 10.0, ((2.0, 0.68), (4.0, 0.60), (8.0, 0.58), (16.0, 0.59)), 1)
    assert frontier([small, large]) == ((1.0, 0.70, "50k"), (2.0, 0.65, "50k"), (4.0, 0.60, "2m"), (8.0, 0.58, "2m"))


def test_flops_per_sample_counts_the_model_of_the_run_config():
    # The 2m budget on a20 (20 features) at context 60: forward and backward of one sample.
    per_sample = training_flops_per_sample(budget_config("2m"))
    assert per_sample == pytest.approx(3.58e9, rel=0.01)
    # Twice the context, about twice the work (the encoder sees twice the patches).
    assert training_flops_per_sample(budget_config("2m", context_len=120)) / per_sample == pytest.approx(2.0, rel=0.15)


def test_a_curve_per_size_from_the_epochs_of_its_seeds(tmp_path, write_run):
    runs = [read_run(write_run(tmp_path, f"c-2m-seed{k}", seed=k, steps=40)) for k in range(2)]
    study = compute_study([Group("2m", 1_985_025, tuple(runs))])
    (curve,) = study.curves
    per_sample = flops_per_sample(runs[0])
    assert curve.flops_per_sample == per_sample == pytest.approx(training_flops_per_sample(budget_config("2m")))
    # write_run logs epochs at steps 20 and 40 (val loss 0.698, 0.696); the config's batch is 64
    # and the summary's 1000 training windows make 16 steps an epoch.
    assert [p[1] for p in curve.points] == pytest.approx([0.698, 0.696])
    assert [p[0] for p in curve.points] == pytest.approx([per_sample * (1000 + 4 * 64), per_sample * (2000 + 8 * 64)])
    assert study.frontier[0] == (curve.points[0][0], curve.points[0][1], "2m")
    assert study.to_json()["curves"][0]["seeds"] == 2
