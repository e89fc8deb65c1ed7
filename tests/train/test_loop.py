"""The loop's pure helpers: learning-rate schedule, loss choice, positive-class weight."""

import pytest
import torch

from fintrain.config import TrainConfig
from fintrain.train.loop import FitState, loss_function, lr_factor, resolve_pos_weight, total_steps


def test_warmup_then_cosine_to_the_floor():
    cfg = TrainConfig(warmup_steps=10, min_lr_ratio=0.1)
    total = 200
    assert lr_factor(0, cfg, total) == pytest.approx(0.1)
    assert lr_factor(9, cfg, total) == pytest.approx(1.0)
    assert lr_factor(10, cfg, total) == pytest.approx(1.0)
    assert lr_factor(105, cfg, total) == pytest.approx(0.55)  # halfway down the cosine
    assert lr_factor(199, cfg, total) == pytest.approx(0.1, abs=1e-3)
    assert lr_factor(500, cfg, total) == pytest.approx(0.1)


def test_warmup_is_at_most_a_tenth_of_a_short_run():
    cfg = TrainConfig(warmup_steps=100)
    assert lr_factor(1, cfg, 20) == pytest.approx(1.0)  # 2-step warm-up for a 20-step run
    assert lr_factor(0, TrainConfig(schedule="constant", warmup_steps=0), 50) == 1.0


def test_total_steps_respects_max_steps():
    assert total_steps(TrainConfig(epochs=3), 10) == 30
    assert total_steps(TrainConfig(epochs=3, max_steps=7), 10) == 7


def test_losses_and_positive_weight():
    y = torch.tensor([1.0, 0.0, 0.0, 0.0])
    out = torch.zeros(4)
    assert loss_function("threshold")(out, y).item() == pytest.approx(0.693147, rel=1e-5)
    assert loss_function("return")(torch.tensor([0.1, 0.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(0.005)
    assert resolve_pos_weight(TrainConfig(pos_weight="auto"), "threshold", y).item() == pytest.approx(3.0)
    assert resolve_pos_weight(TrainConfig(pos_weight=2.5), "direction", y).item() == pytest.approx(2.5)
    assert resolve_pos_weight(TrainConfig(pos_weight="auto"), "return", y) is None


def test_fit_state_round_trip():
    state = FitState(step=5, best_val=0.5, done=True, stop_reason="epochs=1")
    assert FitState.from_dict({**state.to_dict(), "unknown": 1}) == state
