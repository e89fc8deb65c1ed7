"""TensorBoard event files: the run's scalars, and its hyperparameters beside the test metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from fintrain.records import EpochRecord, Event, EventRecord, FinalRecord, Record, TrainRecord

HParamValue = str | int | float | bool

MAX_QUEUE = 1000
FLUSH_SECS = 10


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not a number."""
    if value is None or isinstance(value, str):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class TensorBoardSink:
    """Writes scalars to a TensorBoard log folder, and the hyperparameters at the end.

    Train records give ``train/loss``, ``lr``, ``throughput``, ``thermal/temp_c`` (when there is
    a reading) and ``thermal/paused``; epoch records give ``val/loss``, every ``val/<metric>``,
    ``best/<metric>`` and the epoch's mean training loss as ``train/epoch_loss`` (a separate tag,
    because the last step of an epoch already has a ``train/loss`` point). A thermal pause sets
    ``thermal/paused`` to 1 at its step and its resume writes ``thermal/pause_s``. The final record
    writes the hyperparameters together with ``hparam/test_<metric>`` into this run's own event
    file, so the HParams tab lists the run under its own name (``SummaryWriter.add_hparams``
    would put them in a new sub-folder that shows up as a second run), and the baselines as
    ``baseline/<name>/<metric>``.

    Args:
        log_dir: the folder for the event files, usually ``runs/<name>/tb``.
        hparams: the run's hyperparameters (flat, str/int/float/bool values).
        purge_step: when resuming from a checkpoint at step T, pass T + 1: TensorBoard then
            hides the points an interrupted run logged after T, which the resumed run repeats.
    """

    def __init__(
        self,
        log_dir: Path,
        hparams: Mapping[str, HParamValue],
        purge_step: int | None = None,
    ):
        self.log_dir = Path(log_dir)
        self.hparams = {str(k): self._hparam_value(v) for k, v in hparams.items()}
        self.writer: SummaryWriter | None = SummaryWriter(
            log_dir=str(self.log_dir),
            purge_step=purge_step,
            # A deep queue: with the default of 10, an epoch record's dozen scalars make the
            # training thread wait for the writer thread's disk writes.
            max_queue=MAX_QUEUE,
            # What a kill -9 can lose from the event file (metrics.jsonl keeps it line by line).
            flush_secs=FLUSH_SECS,
        )

    @staticmethod
    def _hparam_value(value: Any) -> HParamValue:
        """A value the HParams plugin accepts (anything else is shown as its text)."""
        if isinstance(value, bool | int | float | str):
            return value
        return str(value)

    def log(self, record: Record, step: int) -> None:
        """Write the scalars of a train or epoch record, or the hparams of the final record."""
        writer = self.writer
        if writer is None:
            return
        match record:
            case TrainRecord():
                scalars = {"train/loss": record.loss, "lr": record.lr, "throughput": record.throughput,
                           "thermal/temp_c": record.temp_c, "thermal/paused": record.paused}
                for tag, raw in scalars.items():
                    if (value := _number(raw)) is not None:
                        writer.add_scalar(tag, value, step)
            case EpochRecord():
                # A separate tag, since the last step of an epoch already has a train/loss point.
                scalars = {"train/epoch_loss": record.train_loss, **{f"val/{k}": v for k, v in record.val.items()},
                           f"best/{record.best_metric}": record.best_value}
                for tag, raw in scalars.items():
                    if (value := _number(raw)) is not None:
                        writer.add_scalar(tag, value, step)
            case EventRecord(event=Event.THERMAL_PAUSE):
                # Train records are only sent while running, so their thermal/paused is always 0:
                # the pause itself is marked at the step where it began, and its length at the end.
                writer.add_scalar("thermal/paused", 1.0, step)
            case EventRecord(event=Event.THERMAL_RESUME):
                writer.add_scalar("thermal/paused", 0.0, step)
                if (pause_s := _number(record.extra.get("paused_s"))) is not None:
                    writer.add_scalar("thermal/pause_s", pause_s, step)
            case FinalRecord():
                self._write_final(writer, record, step)

    def _write_final(self, writer: SummaryWriter, record: FinalRecord, step: int) -> None:
        """The hyperparameters with the test metrics, in this run's own event file."""
        metrics = {
            f"hparam/test_{name}": value
            for name, raw in record.test.items()
            if (value := _number(raw)) is not None and math.isfinite(value)
        }
        experiment, start_info, end_info = hparams_summaries(self.hparams, metrics)
        file_writer = writer.file_writer
        assert file_writer is not None  # set by SummaryWriter.__init__
        for summary in (experiment, start_info, end_info):
            file_writer.add_summary(summary, step)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, step)
        for name, values in record.baselines.items():
            for metric, raw in values.items():
                value = _number(raw)
                if value is not None:
                    writer.add_scalar(f"baseline/{name}/{metric}", value, step)
        writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
