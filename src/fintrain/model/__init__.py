"""PatchTST and its parameter budgets.

``from fintrain.model import PatchTST, ModelConfig, BUDGETS, budget_config, build_model``.
"""

from fintrain.config import ModelConfig
from fintrain.model.budgets import (
    BUDGETS,
    Budget,
    budget_config,
    build_model,
    count_config_parameters,
    model_config_for,
    parse_budget,
)
from fintrain.model.flops import step_flops, training_flops_per_sample
from fintrain.model.patchtst import PatchTST, RevIN, count_parameters, patch_count

__all__ = [
    "BUDGETS",
    "Budget",
    "ModelConfig",
    "PatchTST",
    "RevIN",
    "budget_config",
    "build_model",
    "count_config_parameters",
    "count_parameters",
    "model_config_for",
    "parse_budget",
    "patch_count",
    "step_flops",
    "training_flops_per_sample",
]
