"""ModelConfig: impossible architectures are rejected with the fields named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fintrain.model import ModelConfig


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"d_model": 130, "n_heads": 8}, "d_model=130 is not divisible by n_heads=8"),
        ({"context_len": 12, "patch_len": 16, "stride": 8},
         "patch_len=16 is longer than context_len=12"),
        ({"patch_len": 8, "stride": 9}, "stride=9 is above patch_len=8"),
        ({"dropout": 1.0}, "dropout"),
        ({"norm": "group"}, "norm"),
        ({"head": "classify"}, "head"),
        ({"n_channels": 0}, "n_channels"),
        ({"d_ff": 0}, "d_ff"),
        ({"n_expert": 2}, "n_expert"),
    ],
)
def test_impossible_configs_are_rejected_naming_the_fields(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelConfig(**fields)


def test_config_is_frozen_and_round_trips_through_json() -> None:
    cfg = ModelConfig(head="forecast", horizon=24, residual_attention=True)
    with pytest.raises(ValidationError):
        cfg.d_model = 64  # type: ignore[misc]
    assert ModelConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_config_module_stays_torch_free() -> None:
    import subprocess
    import sys

    code = "import sys, fintrain.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
