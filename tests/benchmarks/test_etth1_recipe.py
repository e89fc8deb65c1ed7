"""benchmarks/etth1.py: the paper recipe's learning rates are the reference's, the one-cycle
schedule's shape, and the seeds' summary (medians at the top, each seed listed)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[2] / "benchmarks" / "etth1.py"
_spec = importlib.util.spec_from_file_location("etth1_benchmark", _path)
etth1 = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = etth1  # dataclasses look their module up while the class is built
_spec.loader.exec_module(etth1)


def test_paper_recipe_is_the_reference_run() -> None:
    recipe = etth1.PAPER_RECIPE
    assert (recipe.lr, recipe.batch_size, recipe.epochs, recipe.patience) == (1e-4, 128, 100, 100)
    assert recipe.schedule == "type3"


def test_paper_schedule_has_the_reference_first_epoch_and_type3_decay() -> None:
    # The reference's unused OneCycleLR leaves epoch 1 at lr/25; adjust_learning_rate(epoch + 1)
    # then keeps the base rate through epoch 4 and decays x0.9 per epoch after.
    recipe, steps = etth1.PAPER_RECIPE, 10
    by_epoch = [etth1.lr_at(recipe, e * steps + 3, steps) for e in range(7)]
    want = [4e-6, 1e-4, 1e-4, 1e-4, 9e-5, 8.1e-5, 7.29e-5]
    assert by_epoch == pytest.approx(want, rel=1e-12)


def test_one_cycle_warms_up_from_a_25th_peaks_and_decays_to_zero() -> None:
    recipe = etth1.Recipe("t", "onecycle", lr=1e-3, batch_size=64, epochs=4, patience=4,
                          warmup_pct=0.25)
    steps = 100  # 400 steps in all, 100 of them warm-up
    rates = [etth1.lr_at(recipe, s, steps) for s in range(400)]
    assert rates[0] == pytest.approx(1e-3 / 25)
    assert max(rates) == pytest.approx(1e-3, rel=1e-3)
    assert rates.index(max(rates)) == 100
    assert all(a <= b for a, b in zip(rates[:100], rates[1:101]))
    assert all(a >= b for a, b in zip(rates[100:], rates[101:]))
    assert rates[-1] < 1e-3 * 1e-4
    assert rates[250] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 150 / 300)))


def test_seeds_summary_is_the_median_and_lists_each_seed() -> None:
    def seed(i: int, mse: float, best: int, epochs: int, seconds: float) -> dict:
        return {"seed": i, "mse": mse, "mae": mse + 0.02, "best_epoch": best, "epochs": epochs,
                "seconds": seconds, "seconds_per_epoch": seconds / epochs, "val_curve": [0.7],
                "capped": False, "n_test_windows": 2785}

    per_seed = [seed(1, 0.390, 5, 6, 250.0), seed(2, 0.380, 6, 6, 270.0),
                seed(3, 0.384, 4, 5, 240.0)]
    out = etth1.summarise(per_seed, etth1.FINTRAIN_RECIPE)
    assert out["mse"] == 0.384 and out["mae"] == 0.404
    assert out["seconds"] == 250.0 and out["best_epoch"] == 5 and out["epochs"] == 6
    assert out["n_test_windows"] == 2785 and out["capped"] is False
    assert [s["seed"] for s in out["seeds"]] == [1, 2, 3]
    assert set(out["seeds"][0]) >= {"mse", "mae", "best_epoch", "epochs", "seconds"}
    per_seed[1]["capped"] = True
    assert etth1.summarise(per_seed, etth1.FINTRAIN_RECIPE)["capped"] is True
