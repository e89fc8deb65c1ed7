"""The one protocol the training loop talks through, the run facts, and fan-out.

The loop never knows whether a human is watching: it calls ``log(record, step)`` on one sink and
``close()`` at the end. The records are the typed ones of :mod:`fintrain.records`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

from fintrain.records import Record

log = logging.getLogger(__name__)


@runtime_checkable
class MetricSink(Protocol):
    """Where the training loop sends what it measures.

    ``log(record, step)`` receives one :data:`~fintrain.records.Record` (``step`` counts
    optimizer steps completed) and dispatches on its type with ``match``:

    - ``TrainRecord``: every ``log_every`` steps, at the end of an epoch and at the last step.
    - ``EpochRecord``: once per epoch and after a final validation.
    - ``EventRecord``: checkpoints, a new best, thermal pause/resume/stop, Ctrl-C, early stop,
      resume.
    - ``StatusRecord``: the moment's state for the panel. Cheap and frequent: a sink that does
      I/O ignores it.
    - ``PhaseRecord``: what runs now besides training steps (validation, test, baselines), with
      its progress; for the displays.
    - ``FinalRecord``: test metrics and baselines, once, at the end.

    ``log`` is called on the training thread, inside the loop's overhead budget: a sink stores
    or appends and returns; it never renders or blocks on a slow device.
    """

    def log(self, record: Record, step: int) -> None:
        """Receive one record measured at optimizer step ``step``."""
        ...

    def close(self) -> None:
        """Flush and release everything; called once, also after an error."""
        ...


@dataclass(frozen=True)
class RunInfo:
    """The static facts of a run that the panel and the plain log show.

    Attributes:
        run_name: the run folder's name.
        run_dir: the run folder.
        device: the torch device the model trains on (``cpu``, ``cuda``, ``mps``).
        ticker: the ticker trained on.
        tier: the feature tier (``a20``).
        budget: the model budget name (``2m``).
        params: the model's parameter count.
        task: ``threshold``, ``direction`` or ``return``.
        epochs: the configured number of epochs.
        steps_per_epoch: optimizer steps in one epoch.
        max_steps: a cap on optimizer steps, or None.
        primary_metric: the validation metric that picks the best checkpoint (``auc`` or ``mse``).
        start_step: the step a resumed run starts from (0 for a fresh run).
    """

    run_name: str
    run_dir: Path
    device: str
    ticker: str
    tier: str
    budget: str
    params: int
    task: str
    epochs: int
    steps_per_epoch: int
    max_steps: int | None
    primary_metric: str
    start_step: int = 0

    @property
    def total_steps(self) -> int:
        """The step the run ends on if nothing stops it early."""
        total = self.epochs * self.steps_per_epoch
        return total if self.max_steps is None else min(total, self.max_steps)


class NullSink:
    """A sink that keeps nothing (for library callers that want no tracking)."""

    def log(self, record: Record, step: int) -> None:
        """Discard the record."""

    def close(self) -> None:
        """Nothing to release."""


class MultiSink:
    """Sends every record to several sinks, in order.

    An exception from one sink does not keep the record from the others, and ``close`` closes
    every sink even if some fail; the first error is then raised (the rest are logged).
    """

    def __init__(self, sinks: Iterable[MetricSink]):
        self.sinks: list[MetricSink] = list(sinks)
        self._closed = False

    def log(self, record: Record, step: int) -> None:
        """Give the record to every sink."""
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.log(record, step)
            except Exception as exc:  # one broken sink must not starve the others
                if first is None:
                    first = exc
                else:
                    log.error("%s.log failed as well: %s", type(sink).__name__, exc)
        if first is not None:
            raise first

    def close(self) -> None:
        """Close every sink (once), then raise the first failure, if any."""
        if self._closed:
            return
        self._closed = True
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # the remaining sinks still hold unflushed data
                if first is None:
                    first = exc
                else:
                    log.error("%s.close failed as well: %s", type(sink).__name__, exc)
        if first is not None:
            raise first

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
