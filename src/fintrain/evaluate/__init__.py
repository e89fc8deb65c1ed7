"""What a run says about its test data: metrics, baselines (incl. gbdt), block-bootstrap
intervals, verdicts, the trading view and IC. Numpy, scikit-learn and Polars; no torch."""

from fintrain.evaluate.baselines import LEARNED, BaselineScores, baseline_scores
from fintrain.evaluate.metrics import (
    improves,
    is_classification,
    primary_metric,
    selection_metric,
    task_metrics,
)
from fintrain.evaluate.plots import equity_plot
from fintrain.evaluate.verdict import BUY_AND_HOLD, MODEL, Assessment, assess, verdict

__all__ = [
    "BUY_AND_HOLD",
    "LEARNED",
    "MODEL",
    "Assessment",
    "BaselineScores",
    "assess",
    "baseline_scores",
    "equity_plot",
    "improves",
    "is_classification",
    "primary_metric",
    "selection_metric",
    "task_metrics",
    "verdict",
]
