"""Batch-size probing: the batch size this machine holds, and the one it trains fastest with.

``probe_batch(data_dir, cfg, device)`` runs the search on the model and data ``fintrain train``
would use and caches the result; ``lookup_batch_size(device, model_cfg, n_train)`` reads it
back for ``fintrain train --batch-size auto``. The search itself
(``search_batch_size(make_step, meter, cfg, ...)``) takes the training step, the memory meter
and the clock as arguments, so it runs with fakes in tests.
"""

from fintrain.train.batch_cache import (
    DEFAULT_BATCH_SIZE,
    cache_dir,
    cache_path,
    lookup_batch_size,
    store_result,
)
from fintrain.probe.memory import CudaMeter, SampledMeter, meter_for
from fintrain.probe.search import (
    Finalist,
    MemoryMeter,
    ProbeError,
    ProbeResult,
    Retiming,
    Trial,
    doubling_sizes,
    search_batch_size,
)
from fintrain.probe.training import ProbeRun, probe_batch, training_step_factory

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "CudaMeter",
    "Finalist",
    "MemoryMeter",
    "ProbeError",
    "ProbeResult",
    "ProbeRun",
    "Retiming",
    "SampledMeter",
    "Trial",
    "cache_dir",
    "cache_path",
    "doubling_sizes",
    "lookup_batch_size",
    "meter_for",
    "probe_batch",
    "search_batch_size",
    "store_result",
    "training_step_factory",
]
