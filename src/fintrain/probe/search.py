"""The batch-size search: which sizes to try, one trial, and the choice among the results.

Hardware sits behind three seams so that every branch runs in tests without a GPU: a *step
factory* (``make_step(batch_size)`` builds a fresh model, optimizer and batch and returns a
function that runs one synchronised training step), a *memory meter* (see
``fintrain.probe.memory``) and a *clock*. The search never interprets an error beyond asking
``is_oom``: anything else propagates unchanged.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from fintrain.config import ProbeConfig
from fintrain.errors import FintrainError
from fintrain.train.device import is_oom

log = logging.getLogger(__name__)

TrialStatus = Literal["ok", "oom", "over_cap"]
StepFactory = Callable[[int], Callable[[], None]]

# Bisection stops once the gap between the largest size that fit and the smallest that did not
# is at most 1/16 of the former: the last few percent of batch size change neither the
# throughput nor the memory margin in a way a user would notice, and every extra trial is a full
# model build plus warm-up (and possibly another out-of-memory on a machine that is swapping).
BISECT_RESOLUTION = 16


class ProbeError(FintrainError):
    """No batch size fits on this device (or the probe cannot run)."""


class MemoryMeter(Protocol):
    """Reads a device's memory for the probe: its budget and each trial's peak."""

    def budget_bytes(self) -> int | None:
        """The memory the device offers (None: unknown, so no cap applies)."""
        ...

    def start(self) -> None:
        """The probe begins (a meter measuring against a reference level records it here)."""
        ...

    def begin_trial(self) -> None:
        """A trial begins: reset peaks, start sampling."""
        ...

    def sample(self) -> None:
        """A point inside the trial (the probe calls it after every step)."""
        ...

    def end_trial(self) -> int | None:
        """The trial ended (normally or not): stop sampling, return its peak in bytes."""
        ...


@dataclass(frozen=True)
class Trial:
    """One batch size tried.

    Attributes:
        batch_size: samples per step.
        status: ``ok`` (fit), ``oom`` (out of memory) or ``over_cap`` (ran, but its peak
            exceeded the memory cap).
        samples_per_s: batch size / median step time; None when it ran out of memory.
        peak_memory_bytes: the meter's peak for the trial (None when unknown).
        step_seconds: the measured steps' times (warm-up excluded).
    """

    batch_size: int
    status: TrialStatus
    samples_per_s: float | None
    peak_memory_bytes: int | None
    step_seconds: tuple[float, ...] = ()

    @property
    def fits(self) -> bool:
        """True when this size can be trained with."""
        return self.status == "ok"

    def to_json(self) -> dict[str, object]:
        """The trial as the ``--json`` document lists it."""
        return {
            "batch_size": self.batch_size,
            "samples_per_s": None if self.samples_per_s is None else round(self.samples_per_s, 3),
            "peak_memory_bytes": self.peak_memory_bytes,
            "status": self.status,
        }


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found.

    Attributes:
        device: the device's name (``device_label``).
        trials: every trial, in the order run.
        recommended: the fitting size with the highest samples/s (None: nothing fit).
        largest_fit: the largest size that fit (None: nothing fit).
        reason: why the search stopped where it did and why the recommendation won.
        memory_budget_bytes: the device's budget the cap was taken from (None: no cap).
        memory_cap_bytes: ``memory_fraction`` x budget (None: no cap).
    """

    device: str
    trials: tuple[Trial, ...]
    recommended: int | None
    largest_fit: int | None
    reason: str
    memory_budget_bytes: int | None = None
    memory_cap_bytes: int | None = None

    def to_json(self) -> dict[str, object]:
        """The ``fintrain probe-batch --json`` document."""
        return {
            "device": self.device,
            "recommended": self.recommended,
            "largest_fit": self.largest_fit,
            "reason": self.reason,
            "memory_budget_bytes": self.memory_budget_bytes,
            "memory_cap_bytes": self.memory_cap_bytes,
            "trials": [t.to_json() for t in self.trials],
        }


def upper_limit(cfg: ProbeConfig, n_train: int | None) -> int:
    """The largest size worth trying: ``max_batch``, or the training set's size if smaller."""
    if n_train is not None:
        if n_train < 1:
            raise ProbeError("the training set is empty: there is no batch size to probe")
        return min(cfg.max_batch, n_train)
    return cfg.max_batch


def doubling_sizes(min_batch: int, limit: int) -> list[int]:
    """``min_batch``, doubled until ``limit``; the limit itself closes the list.

    A limit that is not a power-of-two multiple of ``min_batch`` (``max_batch`` 100, or a
    training set of 3,000 windows) is tried as the last size, so the search can report it.
    """
    if limit <= min_batch:
        return [limit]
    sizes = []
    size = min_batch
    while size < limit:
        sizes.append(size)
        size *= 2
    sizes.append(limit)
    return sizes


def run_trial(
    batch_size: int,
    make_step: StepFactory,
    meter: MemoryMeter,
    steps: int,
    clock: Callable[[], float],
) -> tuple[tuple[float, ...], int | None]:
    """Build, warm up and time one size: the step times and the peak memory.

    Raises whatever the step raises; the caller decides what counts as out-of-memory. The model
    and optimizer live only in this frame, so they are garbage once it is gone.
    """
    meter.begin_trial()
    try:
        step = make_step(batch_size)
        # The warm-up allocates the optimizer's state and the allocator's pools, and runs
        # first-call kernel selection; timing it would punish every size alike but noisily.
        step()
        meter.sample()
        times = []
        for _ in range(steps):
            t0 = clock()
            step()
            times.append(clock() - t0)
            meter.sample()
    finally:
        peak = meter.end_trial()
    return tuple(times), peak


def search_batch_size(
    make_step: StepFactory,
    meter: MemoryMeter,
    cfg: ProbeConfig,
    *,
    device: str,
    n_train: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
    release: Callable[[], None] = lambda: None,
    on_start: Callable[[int], None] | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> ProbeResult:
    """Find the batch sizes that fit and the one that trains fastest.

    Sizes double from ``cfg.min_batch`` up to ``cfg.max_batch`` or ``n_train`` (whichever is
    smaller), stopping at the first that runs out of memory or whose peak exceeds
    ``cfg.memory_fraction`` of the meter's budget. With ``cfg.search == "binsearch"`` the gap
    between the last size that fit and the first that did not is then bisected.

    Args:
        make_step: builds a fresh model, optimizer and batch for a size and returns one
            synchronised training step (forward, backward, optimizer step).
        meter: the device's memory meter.
        cfg: the probe settings.
        device: the device's name, for the result.
        n_train: training-set size (batches larger than it are never tried).
        clock: seconds, monotonic (``time.perf_counter``).
        release: frees a finished trial's memory (gc and the backend's cache) so the next trial
            starts clean; after an out-of-memory it is called once the ``except`` block is
            left, since the traceback would otherwise keep the tensors alive.
        on_start: called with each size before its trial (progress display).
        on_trial: called with each finished trial.

    Returns:
        The trials and the choice; ``recommended`` is None when not even the smallest size fit.

    Raises:
        ProbeError: the training set is empty.
        Exception: any error from a step that is not out-of-memory, unchanged.
    """
    limit = upper_limit(cfg, n_train)
    budget = meter.budget_bytes()
    cap = int(budget * cfg.memory_fraction) if budget is not None else None
    meter.start()
    trials: list[Trial] = []

    def attempt(size: int) -> Trial:
        if on_start is not None:
            on_start(size)
        failed = False
        try:
            times, peak = run_trial(size, make_step, meter, cfg.steps, clock)
        except Exception as exc:
            if not is_oom(exc):
                raise
            log.info("batch size %d ran out of memory: %s", size, exc)
            failed = True
        if failed:
            # Outside the except block the traceback (and the frames holding the model, the
            # optimizer and the activations) is gone, so the memory can really be returned.
            release()
            trial = Trial(size, "oom", None, None)
        else:
            median_s = statistics.median(times)
            throughput = size / median_s if median_s > 0 else None
            status: TrialStatus = "over_cap" if cap is not None and peak is not None and peak > cap else "ok"
            trial = Trial(size, status, throughput, peak, times)
            # The next, larger trial should start from an empty cache, not on top of this one.
            release()
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
        return trial

    first_failure: Trial | None = None
    for size in doubling_sizes(cfg.min_batch, limit):
        trial = attempt(size)
        if not trial.fits:
            first_failure = trial
            break

    fitting = [t.batch_size for t in trials if t.fits]
    # Without a size that fit there is nothing to bisect from: sizes below min_batch are not
    # the user's to be tried.
    if cfg.search == "binsearch" and first_failure is not None and fitting:
        low = max(fitting)
        high = first_failure.batch_size
        while high - low > max(1, low // BISECT_RESOLUTION):
            mid = (low + high) // 2
            if mid <= low or mid >= high:
                break
            if attempt(mid).fits:
                low = mid
            else:
                high = mid

    return choose(trials, device=device, cfg=cfg, limit=limit, n_train=n_train,
                  budget=budget, cap=cap)


def choose(
    trials: list[Trial],
    *,
    device: str,
    cfg: ProbeConfig,
    limit: int,
    n_train: int | None,
    budget: int | None,
    cap: int | None,
) -> ProbeResult:
    """The recommendation (highest samples/s among fitting sizes) and the largest fit, with why."""
    fitting = [t for t in trials if t.fits]
    failures = sorted((t for t in trials if not t.fits), key=lambda t: t.batch_size)
    if not fitting:
        smallest = failures[0] if failures else None
        why = _failure_text(smallest, cfg, cap) if smallest else "no trial ran"
        return ProbeResult(device, tuple(trials), None, None,
                           f"no batch size fits: {why}", budget, cap)
    # Ties go to the smaller size: the same speed with less memory and more updates per epoch.
    best = max(fitting, key=lambda t: (t.samples_per_s or 0.0, -t.batch_size))
    largest = max(t.batch_size for t in fitting)
    above = [t for t in failures if t.batch_size > largest]
    if above:
        stop = f"{largest} is the largest that fits: {_failure_text(above[0], cfg, cap)}"
    elif n_train is not None and limit == n_train and n_train < cfg.max_batch:
        stop = f"{largest} is the largest tried: the training set has only {n_train:,} samples"
    else:
        stop = f"{largest} is the largest tried: max_batch is {cfg.max_batch}"
    if best.batch_size == largest:
        pick = f"{best.batch_size} trains fastest ({_rate(best)})"
    else:
        largest_trial = next(t for t in fitting if t.batch_size == largest)
        pick = f"{best.batch_size} trains fastest ({_rate(best)}; {largest} gives {_rate(largest_trial)})"
    return ProbeResult(device, tuple(trials), best.batch_size, largest, f"{pick}; {stop}",
                       budget, cap)


def _rate(trial: Trial) -> str:
    return "?" if trial.samples_per_s is None else f"{trial.samples_per_s:,.1f} samples/s"


def _failure_text(trial: Trial, cfg: ProbeConfig, cap: int | None) -> str:
    if trial.status == "oom":
        return f"{trial.batch_size} ran out of memory"
    return (
        f"{trial.batch_size} peaked at {format_bytes(trial.peak_memory_bytes)}, above the cap of "
        f"{format_bytes(cap)} ({format_share(cfg.memory_fraction)} of the device's memory)"
    )


def format_share(fraction: float) -> str:
    """``80%``, ``0.6%``: a fraction as a percentage without misleading rounding."""
    return f"{fraction * 100:.3g}%"


def format_bytes(n: int | None) -> str:
    """``1.5 GiB``, ``320 MiB``; ``?`` for None."""
    if n is None:
        return "?"
    if abs(n) < 1024**2:
        return f"{n / 1024:,.0f} KiB"
    if abs(n) < 1024**3:
        return f"{n / 1024**2:,.0f} MiB"
    return f"{n / 1024**3:,.2f} GiB"
