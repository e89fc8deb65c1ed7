"""The sinks a training run writes to, chosen for where its output goes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from fintrain.tracking.jsonl import JsonlSink
from fintrain.tracking.panel import LivePanel
from fintrain.tracking.plain import PlainLog
from fintrain.tracking.sink import MetricSink, MultiSink, RunInfo
from fintrain.tracking.tensorboard_log import HParamValue, TensorBoardSink

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"


def make_sinks(
    info: RunInfo,
    run_dir: Path,
    hparams: Mapping[str, HParamValue],
    live: bool,
    console: Console | None = None,
) -> MultiSink:
    """The display, ``metrics.jsonl`` and TensorBoard sinks of a run, as one sink.

    The display is the live panel when ``live`` is set and the console is a terminal, else one
    plain line per epoch and event on the console's stream. The panel is started here and
    stops when the returned sink is closed. On resume (``info.start_step > 0``) the lines and
    points an interrupted run logged after its checkpoint are dropped, since the resumed run
    logs them again.

    Args:
        info: the run's static facts.
        run_dir: the run folder; ``metrics.jsonl`` and ``tb/`` are created in it.
        hparams: the hyperparameters TensorBoard shows beside the final test metrics.
        live: whether a live panel is wanted (False for ``--no-live``).
        console: where the display goes; a new stderr console when None.

    Returns:
        A :class:`MultiSink`; close it in a ``finally`` so the panel stops and files are flushed.
    """
    console = console if console is not None else Console(stderr=True)
    run_dir = Path(run_dir)
    resume_step = info.start_step if info.start_step > 0 else None
    sinks: list[MetricSink] = []
    try:
        sinks.append(JsonlSink(run_dir / METRICS_FILE, resume_step=resume_step))
        sinks.append(
            TensorBoardSink(
                run_dir / TENSORBOARD_DIR,
                hparams,
                purge_step=None if resume_step is None else resume_step + 1,
            )
        )
        if live and console.is_terminal:
            sinks.append(LivePanel(info, console=console).start())
        else:
            sinks.append(PlainLog(info, stream=console.file))
    except BaseException:
        MultiSink(sinks).close()
        raise
    return MultiSink(sinks)
