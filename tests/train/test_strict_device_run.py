"""The tiny end-to-end run (train, validate, test, baselines, summary) under the strict-device
mode: the CPU stands in for MPS and refuses every float64 made from a device tensor and every
``.numpy()`` of one, so a host/device mistake on the end-of-run path fails here, not on a Mac."""

from __future__ import annotations

import json

import pytest

from fintrain.config import load_config
from fintrain.train import run as run_lib


@pytest.mark.parametrize(("task", "learned"), [("threshold", "logistic"), ("return", "linear")])
@pytest.mark.slow
def test_tiny_run_finishes_under_the_strict_device(tmp_path, tiny_toml, strict_device, task, learned):
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml(target={"task": task}, train={"max_steps": 6}))
    cfg = load_config(config, environ={})
    with strict_device() as mode:
        run_lib.start_run(cfg, tmp_path / "data", tmp_path / "runs", run_name="strict", options=run_lib.RunOptions(live=False))
    assert not mode.refused
    assert mode.marked > 100  # the run did put its data and model on the strict device
    summary = json.loads((tmp_path / "runs" / "strict" / "summary.json").read_text())
    assert learned in summary["baselines"] and summary["test"]
    assert summary["steps"] == 6
    # The learned baseline was fitted on real values, not on zeros.
    if task == "threshold":
        assert summary["baselines"]["logistic"]["auc"] != 0.5
    else:
        assert summary["baselines"]["linear"]["mse"] != summary["baselines"]["zero_return"]["mse"]
