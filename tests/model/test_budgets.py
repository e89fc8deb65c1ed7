"""Parameter budgets: counts within 10% of nominal, shapes for any data, clear errors."""

from __future__ import annotations

import pytest
import torch

from fintrain.config import ModelChoice
from fintrain.errors import ConfigError
from fintrain.model import BUDGETS, PatchTST, budget_config, count_parameters


def params_of(cfg) -> int:
    """Trainable parameters without allocating them (the 200m model would take 800 MB)."""
    with torch.device("meta"):
        return count_parameters(PatchTST(cfg))


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_budget_is_within_ten_percent_of_its_nominal_size(name: str) -> None:
    cfg = budget_config(name, n_channels=20, context_len=60, head="predict", n_outputs=1)
    nominal = BUDGETS[name].nominal_params
    assert abs(params_of(cfg) - nominal) <= 0.10 * nominal


def test_known_budgets_follow_the_original_study() -> None:
    assert set(BUDGETS) == {"2m", "20m", "200m"}
    assert (BUDGETS["20m"].d_model, BUDGETS["20m"].n_heads, BUDGETS["20m"].n_layers,
            BUDGETS["20m"].d_ff) == (512, 8, 6, 2048)
    assert (BUDGETS["200m"].d_model, BUDGETS["200m"].n_heads, BUDGETS["200m"].n_layers,
            BUDGETS["200m"].d_ff) == (1024, 16, 16, 4096)


def test_unknown_budget_names_the_value_and_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'3m'.*2m, 20m, 200m"):
        budget_config("3m")


def test_default_patching_for_daily_context() -> None:
    cfg = budget_config("2m")
    assert (cfg.patch_len, cfg.stride, cfg.n_patches) == (8, 4, 15)
    assert (cfg.context_len, cfg.n_channels, cfg.head, cfg.n_outputs) == (60, 20, "predict", 1)


@pytest.mark.parametrize("context_len", [2, 5, 8, 21, 61, 252])
def test_budget_shapes_derive_for_other_context_lengths(context_len: int) -> None:
    # d_model/heads shrunk so the forward pass is quick; the data-dependent shapes are the point.
    cfg = budget_config("2m", n_channels=4, context_len=context_len, d_model=12, n_heads=2,
                        d_ff=16, n_layers=1)
    assert cfg.patch_len <= context_len and 1 <= cfg.stride <= cfg.patch_len
    model = PatchTST(cfg)
    assert model(torch.randn(3, context_len, 4)).shape == (3, 1)
    assert model.pos.shape == (cfg.n_patches, 12)


def test_training_code_call_pattern_applies_the_users_overrides() -> None:
    choice = ModelChoice(budget="20m", d_model=256, n_heads=4, patch_len=12, dropout=0.3)
    cfg = budget_config(choice.budget, n_channels=7, context_len=90, head="predict",
                        n_outputs=1, **choice.overrides())
    assert (cfg.d_model, cfg.n_heads, cfg.patch_len, cfg.dropout) == (256, 4, 12, 0.3)
    # Untouched fields keep the preset; a patch_len override brings half-patch stride with it.
    assert (cfg.n_layers, cfg.d_ff, cfg.stride) == (6, 2048, 6)


def test_revin_defaults_off_for_predict_and_on_for_forecast() -> None:
    assert budget_config("2m").revin is False
    assert budget_config("2m", head="forecast", horizon=10).revin is True
    assert budget_config("2m", revin=True).revin is True


def test_impossible_override_is_a_config_error_naming_the_fields() -> None:
    with pytest.raises(ConfigError, match=r"d_model=192 is not divisible by n_heads=7"):
        budget_config("2m", n_heads=7)
    with pytest.raises(ConfigError, match=r"patch_len=16 is longer than context_len=10"):
        budget_config("2m", context_len=10, patch_len=16)


def test_unknown_override_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"n_experts: unknown field"):
        budget_config("2m", n_experts=4)
