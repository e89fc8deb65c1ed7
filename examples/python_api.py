"""fintrain from Python: the same steps `fintrain train` takes, one call each.

    python examples/python_api.py
"""

from pathlib import Path

from fintrain.config import load_config
from fintrain.train.run import RunOptions, plan_run, start_run

data_dir, runs_dir = Path("data"), Path("runs")
cfg = load_config(
    overrides={
        "data": {"ticker": "MSFT", "source": "sample"},
        "train": {"max_steps": 20, "device": "cpu"},
        "thermal": {"source": "none"},
    }
)

plan = plan_run(cfg, data_dir)  # fetches, builds features, builds the model: no training
print(f"{plan.params:,} parameters, {len(plan.prepared.splits.train):,} training windows")

outcome = start_run(cfg, data_dir, runs_dir, options=RunOptions(live=False))
print(outcome.run_dir, outcome.summary["test"]["auc"], outcome.summary["baselines"]["base_rate"]["auc"])
