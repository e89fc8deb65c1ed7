"""Parameter budgets: counts within 10% of nominal, shapes for any data, clear errors."""

from __future__ import annotations

import pytest
import torch

from fintrain.config import ModelChoice
from fintrain.errors import ConfigError
from fintrain.model import BUDGETS, PatchTST, budget_config, count_parameters, parse_budget
from fintrain.model.budgets import DEPTH_ANCHORS, shape_for


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


def test_presets_are_unchanged_by_the_size_rule() -> None:
    assert (BUDGETS["2m"].d_model, BUDGETS["2m"].n_heads, BUDGETS["2m"].n_layers,
            BUDGETS["2m"].d_ff) == (192, 6, 4, 896)
    for name in ("2m", "20m", "200m", "2M", "2000k", "200M", "200000k"):
        budget = parse_budget(name)
        assert budget is BUDGETS[budget.name]
    cfg = budget_config("20m", n_channels=50, context_len=60)
    assert (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.d_ff) == (512, 8, 6, 2048)


SIZES = ["50k", "70k", "100k", "150k", "300k", "500k", "700k", "1m", "1.5m", "3m", "5m",
         "7m", "10m", "30m", "50m", "100m", "150m", "200m"]


@pytest.mark.parametrize("n_channels", [20, 50], ids=["a20", "a50"])
def test_any_size_from_50k_to_200m_is_within_ten_percent_for_a20_and_a50(n_channels: int) -> None:
    for name in SIZES:
        cfg = budget_config(name, n_channels=n_channels, context_len=60, head="predict", n_outputs=1)
        nominal = parse_budget(name).nominal_params
        assert abs(params_of(cfg) - nominal) <= 0.10 * nominal, name


def test_size_rule_reproduces_the_presets_and_grows_between_them() -> None:
    # The rule alone (not the presets) lands on the presets' depth, width and heads.
    for n, layers in DEPTH_ANCHORS[2:]:
        rule = shape_for(n)
        preset = BUDGETS[rule.name]
        assert (rule.n_layers, rule.d_model, rule.n_heads) == (
            preset.n_layers, preset.d_model, preset.n_heads) and layers == preset.n_layers
    shapes = [shape_for(parse_budget(name).nominal_params) for name in SIZES]
    assert [s.n_layers for s in shapes] == sorted(s.n_layers for s in shapes)
    assert [s.d_model for s in shapes] == sorted(s.d_model for s in shapes)
    # Worked examples from the module docstring.
    small = budget_config("50k")
    assert (small.n_layers, small.d_model, small.n_heads) == (2, 48, 3)
    assert (parse_budget("300k").n_layers, parse_budget("300k").d_model) == (3, 96)
    assert (parse_budget("5m").n_layers, parse_budget("5m").d_model, parse_budget("5m").n_heads) == (5, 288, 9)


def test_a_size_keeps_its_count_on_a_longer_context() -> None:
    cfg = budget_config("100k", n_channels=20, context_len=252)
    assert abs(params_of(cfg) - 100_000) <= 0.01 * 100_000


@pytest.mark.parametrize(("name", "canonical"), [("300K", "300k"), ("1.5m", "1500k"), ("5M", "5m"),
                                                 (" 50k ", "50k")])
def test_sizes_are_case_insensitive_with_a_canonical_name(name: str, canonical: str) -> None:
    assert parse_budget(name).name == canonical


@pytest.mark.parametrize(("name", "message"), [
    ("3x", r"unknown model budget '3x'; give a preset \(2m, 20m, 200m\) or a size"),
    ("m", r"unknown model budget 'm'"),
    ("5k", r"'5k' is outside the sizes fintrain builds: give 10k to 200m"),
    ("2b", r"unknown model budget '2b'"),
    ("300m", r"'300m' is outside"),
])
def test_bad_budget_names_the_value_and_what_is_accepted(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        budget_config(name)


def test_a_size_too_small_for_the_data_shape_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'10k' is too small for 500 channels"):
        budget_config("10k", n_channels=500)


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
