"""Memory meters: each backend's budget and the peak of one probe trial.

- CUDA: the allocator's peak allocated memory (``max_memory_allocated`` after
  ``reset_peak_memory_stats``), against the card's total memory.
- MPS: ``driver_allocated_memory`` (which includes the allocator's cached blocks, so a step's
  high-water mark is still visible after the step) sampled after every step, against
  ``recommended_max_memory``. MPS has no peak-memory call, and its allocator lets a process
  grow to about 1.7 x the recommended size (swapping) before it raises out-of-memory, which is
  why the probe caps memory itself.
- CPU: the process's resident memory, sampled in a background thread during the trial (the
  allocator hands large blocks back as soon as a step frees them, so sampling only between
  steps would miss the peak), counted above its level when the probe started, against the
  machine's available memory then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Callable

import torch

from fintrain.probe.search import MemoryMeter
from fintrain.device import memory_budget, memory_in_use, process_rss_bytes

# Fast enough to catch a step's activation peak on CPU (a step of even a tiny model takes
# tens of milliseconds), cheap enough (one /proc read) not to slow the step it watches.
CPU_SAMPLE_INTERVAL_S = 0.005


class SampledMeter:
    """The peak of a memory reading sampled at step boundaries and, optionally, in a thread.

    Args:
        read: the current reading in bytes (None when unavailable).
        budget: the device's memory budget in bytes (None: unknown).
        relative: report the peak above the reading taken when the probe started, rather
            than the absolute reading.
        interval_s: also sample every ``interval_s`` seconds in a background thread while a
            trial runs (None: only at step boundaries).
        before_trial: called before each trial's first reading (e.g. to return freed heap pages
            to the operating system).
    """

    def __init__(
        self,
        read: Callable[[], int | None],
        budget: Callable[[], int | None],
        *,
        relative: bool = False,
        interval_s: float | None = None,
        before_trial: Callable[[], None] | None = None,
    ) -> None:
        self._read = read
        self._budget = budget
        self._relative = relative
        self._interval_s = interval_s
        self._before_trial = before_trial
        self._reference = 0
        self._peak: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def budget_bytes(self) -> int | None:
        """The budget reading."""
        return self._budget()

    def start(self) -> None:
        """Record the reference level (relative meters)."""
        if self._before_trial is not None:
            self._before_trial()
        reference = self._read() if self._relative else None
        self._reference = reference or 0

    def begin_trial(self) -> None:
        """Reset the peak and start the sampling thread, if any."""
        if self._before_trial is not None:
            self._before_trial()
        with self._lock:
            self._peak = None
        self.sample()
        if self._interval_s is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample_loop, name="probe-memory", daemon=True)
            self._thread.start()

    def sample(self) -> None:
        """Take one reading."""
        value = self._read()
        if value is None:
            return
        with self._lock:
            if self._peak is None or value > self._peak:
                self._peak = value

    def end_trial(self) -> int | None:
        """Stop sampling; the trial's peak (above the reference when relative)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with self._lock:
            peak = self._peak
        if peak is None:
            return None
        return max(0, peak - self._reference) if self._relative else peak

    def _sample_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()


class CudaMeter:
    """CUDA's peak allocated memory per trial, against the device's total memory."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def budget_bytes(self) -> int | None:
        """Total memory of the card."""
        return memory_budget(self.device)

    def start(self) -> None:
        """Nothing to record: CUDA counts from zero allocated bytes."""

    def begin_trial(self) -> None:
        """Reset CUDA's peak counters."""
        torch.cuda.reset_peak_memory_stats(self.device)

    def sample(self) -> None:
        """CUDA tracks its own peak."""

    def end_trial(self) -> int | None:
        """Peak allocated bytes since ``begin_trial``."""
        return torch.cuda.max_memory_allocated(self.device)


def _load_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
        return None


_MALLOC_TRIM = _load_malloc_trim()


def trim_heap() -> None:
    """Hand freed heap pages back to the operating system (glibc), so RSS shows what is used.

    glibc keeps freed blocks of a previous, smaller trial in its heap; without trimming, the
    resident level would carry them from trial to trial.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def meter_for(device: torch.device) -> MemoryMeter:
    """The memory meter of a device."""
    if device.type == "cuda":
        return CudaMeter(device)
    if device.type == "mps":
        return SampledMeter(lambda: memory_in_use(device), lambda: memory_budget(device))
    return SampledMeter(
        process_rss_bytes,
        lambda: memory_budget(device),
        relative=True,
        interval_s=CPU_SAMPLE_INTERVAL_S,
        before_trial=trim_heap,
    )
