"""How a run is shown and watched: the options ``start_run``, ``resume_run`` and ``run_sweep`` share.

None of them changes what is trained. This module loads without torch, so that the sweep module
(which ``fintrain report`` and ``runs`` import) stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:  # both load torch (the tracking package through TensorBoard)
    from fintrain.tracking.sink import MetricSink
    from fintrain.train.distributed import Distributed

_run_log = logging.getLogger("fintrain.train.run")


@dataclass(frozen=True)
class RunOptions:
    """How a run is shown and watched.

    Attributes:
        live: show the live panel when the console is a terminal (False for ``--no-live``).
        console: where progress goes; a new stderr console when None.
        notify: receives one-line messages (data fetched, features built, a cell restarted).
        monitor: a thermal monitor (anything with ``status()``) to ask instead of opening
            ``thermal.source``; whoever made it stops it.
        sinks: more sinks that receive every record rank 0 logs, beside ``metrics.jsonl``,
            TensorBoard and the display (a library caller's own tracker, say).
        dist: this process's rank under torchrun; one process when None.
    """

    live: bool = True
    console: Console | None = None
    notify: Callable[[str], None] = _run_log.info
    monitor: Any = None
    sinks: tuple[MetricSink, ...] = ()
    dist: Distributed | None = None
