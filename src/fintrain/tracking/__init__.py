"""Where a training run's measurements go: a live panel or plain lines, JSON lines, TensorBoard.

The training loop sends typed records (:mod:`fintrain.records`) through one :class:`MetricSink`
protocol; this package holds no training logic.
"""

from fintrain.tracking.factory import METRICS_FILE, TENSORBOARD_DIR, make_sinks
from fintrain.tracking.jsonl import JsonlSink
from fintrain.tracking.panel import LivePanel
from fintrain.tracking.plain import PlainLog
from fintrain.tracking.sink import (
    MetricSink,
    MultiSink,
    NullSink,
    RunInfo,
)
from fintrain.tracking.tensorboard_log import TensorBoardSink

__all__ = [
    "METRICS_FILE",
    "TENSORBOARD_DIR",
    "JsonlSink",
    "LivePanel",
    "MetricSink",
    "MultiSink",
    "NullSink",
    "PlainLog",
    "RunInfo",
    "TensorBoardSink",
    "make_sinks",
]
