"""PatchTST and its parameter budgets.

``from fintrain.model import PatchTST, ModelConfig, BUDGETS, budget_config``.
"""

from fintrain.config import ModelConfig
from fintrain.model.budgets import BUDGETS, Budget, budget_config
from fintrain.model.patchtst import PatchTST, RevIN, count_parameters, patch_count

__all__ = [
    "BUDGETS",
    "Budget",
    "ModelConfig",
    "PatchTST",
    "RevIN",
    "budget_config",
    "count_parameters",
    "patch_count",
]
