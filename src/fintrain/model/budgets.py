"""Parameter budgets: named PatchTST shapes (``BUDGETS["2m"]``), a shape rule for any other size,
and the config they produce.

Each preset's trainable parameter count, for fintrain's default data shape (20 channels, a
context of 60 rows, the ``predict`` head with one output), is within 10% of its nominal size;
``tests/model/test_budgets.py`` checks it. The shapes follow the original study's (2M: d_model
192, 6 heads, 4 layers, d_ff 768; 20M: 512/8/6/2048; 200M: 1024/16/16/4096), changed only where
the count needed it.

Any other size is written as a number with ``k`` or ``m`` (``50k``, ``300k``, ``1.5m``, ``50m``;
case-insensitive; 10k to 200m) and gets its shape from this rule, which reproduces the presets'
depth and width and extends them below 2m:

- depth: ``n_layers`` is interpolated linearly in log10(N) through the anchors 20k -> 2,
  200k -> 3, 2m -> 4, 20m -> 6, 200m -> 16 and rounded (2 below 20k);
- width: the target ``d_model`` is sqrt(N / (12 n_layers)) (an encoder layer with d_ff = 4 d has
  about 12 d^2 parameters); heads are 16 wide below a target width of 128, 32 wide below 384 and
  64 wide above, and ``d_model`` is the target rounded to a whole number of heads (at least one);
- feed-forward: ``d_ff`` is solved, for the run's data shape (channels and context), so that the
  whole model lands on N (the count is affine in d_ff), which keeps every size within 1% of
  nominal for the a20 and a50 tiers whatever the context.

For example 50k is 2 layers, d_model 48 (3 heads), d_ff about 150; 300k is 3 layers, d_model 96
(6 heads), d_ff about 310; 5m is 5 layers, d_model 288 (9 heads). ``fintrain train --dry-run``
prints the shape of any size. A size written as a preset's nominal count (``2000k``) is that
preset.

There is no ``2b`` preset, and nothing above 200m: on one ticker's ~8,000 daily rows the study
gained +0.3% AUC going from 2M to 200M parameters, and a 2B model would need ~32 GB in fp32 for
its weights and Adam state alone, beyond the laptops fintrain is for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import ValidationError

from fintrain.config import ModelConfig, RunConfig, describe_validation_error
from fintrain.device import manual_seed_all
from fintrain.errors import ConfigError, did_you_mean
from fintrain.model.patchtst import PatchTST, count_parameters

# Patches for daily data: 8 rows (about a trading week and a half) with 50% overlap. On the
# default 60-row context that gives 15 patches, a token sequence of the length PatchTST works
# well with (the paper uses 42 on hourly data), while each patch still spans enough days to carry
# a local shape (a 4-row patch would make tokens little more than single returns).
DEFAULT_PATCH_LEN = 8


@dataclass(frozen=True)
class Budget:
    """A named architecture: a preset or a size's shape; the data-dependent fields come from
    ``budget_config`` (``d_ff`` None: solved there for the data shape, see the module docstring)."""

    name: str
    nominal_params: int
    d_model: int
    n_heads: int
    n_layers: int
    d_ff: int | None
    dropout: float
    head_dropout: float


# Dropout 0.2 / head dropout 0.1: daily market data is a few thousand noisy rows, so every preset
# is heavily over-parameterised for it and regularisation matters more than on ETTh1.
BUDGETS: dict[str, Budget] = {
    # The study's 192/6/4 shape with d_ff 768 has 1.79M parameters, 10.6% short of 2M; a wider
    # feed-forward (896 = 4.67 d_model) is the smallest change that lands within 1%, and keeps
    # 32-wide heads.
    "2m": Budget("2m", 2_000_000, d_model=192, n_heads=6, n_layers=4, d_ff=896,
                 dropout=0.2, head_dropout=0.1),
    # The study's shape as is: 18.9M parameters.
    "20m": Budget("20m", 20_000_000, d_model=512, n_heads=8, n_layers=6, d_ff=2048,
                  dropout=0.2, head_dropout=0.1),
    # The study's shape as is: 201.6M parameters.
    "200m": Budget("200m", 200_000_000, d_model=1024, n_heads=16, n_layers=16, d_ff=4096,
                   dropout=0.2, head_dropout=0.1),
}


# The shape rule's depth anchors: (nominal parameters, encoder layers), see the module docstring.
DEPTH_ANCHORS: tuple[tuple[int, int], ...] = (
    (20_000, 2), (200_000, 3), (2_000_000, 4), (20_000_000, 6), (200_000_000, 16),
)
MIN_PARAMS = 10_000
MAX_PARAMS = 200_000_000
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([km])")
_UNITS = {"k": 1_000, "m": 1_000_000}


def _budget_suggestion(key: str) -> str:
    """``"; did you mean 2m?"`` for a near-miss (``2 m``, ``2mb``, ``2 million``, ``300``, ``2n``), else ``""``."""
    number = re.fullmatch(r"(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)", key)
    if number is not None:
        value, unit = number.groups()
        units = [unit[0]] if unit[:1] in _UNITS else [] if unit else ["k", "m"]
        sizes = [f"{value}{u}" for u in units if MIN_PARAMS <= float(value) * _UNITS[u] <= MAX_PARAMS]
        if sizes:
            return f"; did you mean {' or '.join(sizes)}?"
    return did_you_mean(key, list(BUDGETS), cutoff=0.5)


def size_name(nominal_params: int) -> str:
    """The canonical name of a size: ``m`` for whole millions, else ``k`` (1500000 -> 1500k)."""
    if nominal_params % 1_000_000 == 0:
        return f"{nominal_params // 1_000_000}m"
    if nominal_params % 1_000 == 0:
        return f"{nominal_params // 1_000}k"
    return f"{nominal_params / 1_000:g}k"


def layers_for(nominal_params: int) -> int:
    """Encoder depth of a size: linear in log10(N) between the anchors, rounded."""
    log_n = math.log10(nominal_params)
    points = [(math.log10(n), layers) for n, layers in DEPTH_ANCHORS]
    if log_n <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if log_n <= x1:
            return round(y0 + (y1 - y0) * (log_n - x0) / (x1 - x0))
    return points[-1][1]


def shape_for(nominal_params: int) -> Budget:
    """The rule's depth, heads and width for a size (``d_ff`` is solved per data shape)."""
    n_layers = layers_for(nominal_params)
    target = math.sqrt(nominal_params / (12 * n_layers))
    head_dim = 16 if target < 128 else 32 if target < 384 else 64
    n_heads = max(1, round(target / head_dim))
    return Budget(size_name(nominal_params), nominal_params, d_model=n_heads * head_dim,
                  n_heads=n_heads, n_layers=n_layers, d_ff=None, dropout=0.2, head_dropout=0.1)


def parse_budget(text: str) -> Budget:
    """The budget a ``--budget`` value names: a preset, or any size as ``<number>k``/``<number>m``.

    This is the one place budget names are read (case-insensitive); everything else calls it.

    Raises:
        ConfigError: not a size, or a size outside 10k..200m (the message says what is accepted).

    Example:
        >>> parse_budget("300k").n_layers, parse_budget("2M") is BUDGETS["2m"]
        (3, True)
    """
    key = text.strip().lower()
    if key in BUDGETS:
        return BUDGETS[key]
    match = _SIZE.fullmatch(key)
    if match is None:
        raise ConfigError(
            f"unknown model budget {text!r}; give a preset ({', '.join(BUDGETS)}) or a size as a number "
            f"with k or m, such as 300k or 5m{_budget_suggestion(key)}"
        )
    nominal = round(float(match.group(1)) * _UNITS[match.group(2)])
    if not MIN_PARAMS <= nominal <= MAX_PARAMS:
        raise ConfigError(
            f"model budget {text!r} is outside the sizes fintrain builds: give 10k to 200m"
        )
    for preset in BUDGETS.values():
        if preset.nominal_params == nominal:
            return preset
    return shape_for(nominal)


def _solve_d_ff(budget: Budget, fields: dict[str, Any]) -> int:
    """The d_ff that brings the model with ``fields`` to the budget's nominal count."""
    def count(d_ff: int) -> int:
        return count_config_parameters(ModelConfig.model_validate({**fields, "d_ff": d_ff}))

    base = count(1)
    per_unit = count(2) - base
    d_ff = 1 + round((budget.nominal_params - base) / per_unit)
    if d_ff < 1:
        raise ConfigError(
            f"model budget {budget.name!r} is too small for {fields['n_channels']} channels and a "
            f"context of {fields['context_len']} rows: choose a larger size"
        )
    return d_ff


def count_config_parameters(model_cfg: ModelConfig) -> int:
    """Trainable parameters of the PatchTST a config builds, without allocating them."""
    with torch.device("meta"):
        return count_parameters(PatchTST(ModelConfig.model_validate({**model_cfg.model_dump(), "compile": False})))


def default_patching(context_len: int, patch_len: int | None = None) -> tuple[int, int]:
    """Patch length and stride for a context: 8/4 (see DEFAULT_PATCH_LEN), shrunk to fit."""
    if patch_len is None:
        patch_len = min(DEFAULT_PATCH_LEN, context_len)
    return patch_len, max(1, patch_len // 2)


def budget_config(
    name: str, n_channels: int = 20, context_len: int = 60, **overrides: Any
) -> ModelConfig:
    """The ModelConfig of a budget preset for a data shape, with optional overrides.

    Patch length and stride default to 8 and 4 (shrunk for contexts shorter than 8 rows); a
    ``patch_len`` override without a ``stride`` gets half the patch as stride. The positional
    table and the heads follow from the context, so any context length works. The ``predict``
    head (the default) has RevIN off unless ``revin=True`` is given: fintrain's features are
    already scaled on the training rows, and per-window normalisation would erase their level
    (an RSI of 80 and one of 30 would look alike) and the volatility regime, which is what the
    threshold task mostly depends on. The ``forecast`` head keeps the paper's RevIN.

    Args:
        name: a key of ``BUDGETS`` (2m, 20m, 200m) or any size (``300k``, ``5m``), read by
            ``parse_budget``.
        n_channels: input features per row.
        context_len: rows per input window.
        **overrides: any other ``ModelConfig`` field (head, n_outputs, horizon, patch_len,
            d_model, ...); None values are ignored.

    Returns:
        The validated, frozen config.

    Raises:
        ConfigError: an unknown budget name, an unknown field, or an impossible combination
            (the message names the fields); a size too small for the data shape.

    Example:
        >>> budget_config("2m", n_channels=20, context_len=60, head="predict", n_outputs=1).d_model
        192
    """
    budget = parse_budget(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    patch_len, stride = default_patching(context_len, overrides.get("patch_len"))
    head = overrides.get("head", "predict")
    fields: dict[str, Any] = {
        "context_len": context_len,
        "n_channels": n_channels,
        "patch_len": patch_len,
        "stride": stride,
        "d_model": budget.d_model,
        "n_heads": budget.n_heads,
        "n_layers": budget.n_layers,
        "d_ff": budget.d_ff,
        "dropout": budget.dropout,
        "head_dropout": budget.head_dropout,
        "revin": head == "forecast",
        **overrides,
    }
    try:
        if "d_ff" not in overrides and budget.d_ff is None:
            fields["d_ff"] = _solve_d_ff(budget, fields)
        return ModelConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, f"model for budget {name!r}")) from exc


def model_config_for(cfg: RunConfig, n_features: int) -> ModelConfig:
    """The PatchTST configuration of a run: the budget's preset plus the user's overrides."""
    return budget_config(
        cfg.model.budget,
        n_channels=n_features,
        context_len=cfg.split.context_len,
        head="predict",
        n_outputs=1,
        compile=cfg.model.compile,
        **cfg.model.overrides(),
    )


def build_model(model_cfg: ModelConfig, seed: int, device: torch.device) -> torch.nn.Module:
    """A freshly initialised PatchTST on ``device`` (seeded, float32)."""
    manual_seed_all(seed)
    # PatchTST compiles itself (in place, so checkpoint keys stay the same) when asked to.
    return PatchTST(model_cfg).to(device=device, dtype=torch.float32)
