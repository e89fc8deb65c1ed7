"""A run's test metrics, predictions and verdicts come from the checkpoint selected on validation."""

from __future__ import annotations

import json

import polars as pl
import pytest

from fintrain.config import load_config
from fintrain.evaluate import task_metrics
from fintrain.model import build_model
from fintrain.train import run as run_lib
from fintrain.train.checkpoint import load_checkpoint
from fintrain.train.loop import evaluate, loss_function
from fintrain.train.prepare import prepare_data


@pytest.mark.slow
def test_test_metrics_come_from_best_pt_when_the_last_epoch_is_not_the_best(tmp_path, tiny_toml):
    config = tmp_path / "tiny.toml"
    # Three epochs at this learning rate: validation AUC peaks in the first, validation loss is
    # lowest in the last, so the selected checkpoint is not the last weights.
    config.write_text(tiny_toml(train={"epochs": 3, "lr": 0.003, "warmup_steps": 5, "patience": 5}))
    cfg = load_config(config, environ={})
    outcome = run_lib.start_run(cfg, tmp_path / "data", tmp_path / "runs", run_name="r",
                                options=run_lib.RunOptions(live=False))
    summary = outcome.summary
    assert summary["selected_on"] == "auc"
    assert summary["best_epoch"] == 1 and summary["epochs_completed"] == 3
    epochs = [json.loads(line) for line in (outcome.run_dir / "metrics.jsonl").read_text().splitlines()]
    val_loss = [r["val/loss"] for r in epochs if r["kind"] == "epoch"]
    assert min(val_loss) == val_loss[2]  # selection on loss would have taken the last epoch

    plan = run_lib.plan_run(cfg, tmp_path / "data")
    splits = prepare_data(tmp_path / "data", cfg).splits
    loss_fn = loss_function(cfg.target.task)

    def test_metrics(name: str) -> dict[str, float]:
        model = build_model(plan.model_cfg, 0, "cpu")
        model.load_state_dict(load_checkpoint(outcome.run_dir / "checkpoints" / name)["model"])
        return evaluate(model, splits.test, 64, cfg.target.task, loss_fn)

    best, last = test_metrics("best.pt"), test_metrics("last.pt")
    assert summary["test"] == pytest.approx(best)
    assert summary["test"]["auc"] != pytest.approx(last["auc"], abs=1e-6)
    # The predictions file holds the same model's scores.
    test = pl.read_parquet(outcome.run_dir / "predictions.parquet").filter(pl.col("split") == "test")
    assert task_metrics("threshold", test["label"].to_numpy(), test["PatchTST"].to_numpy())["auc"] == pytest.approx(best["auc"])
