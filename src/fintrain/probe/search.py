"""The batch-size search: which sizes to try, one trial, the re-timing of the fastest, and the choice.

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
from fintrain.device import is_oom
from fintrain.errors import ProbeError  # re-exported: code imports it from here
from fintrain.display import format_bytes

log = logging.getLogger(__name__)

TrialStatus = Literal["ok", "oom", "over_cap"]
StepFactory = Callable[[int], Callable[[], None]]

# Bisection stops once the gap between the largest size that fit and the smallest that did not
# is at most 1/16 of the former: the last few percent of batch size change neither the
# throughput nor the memory margin in a way a user would notice, and every extra trial is a full
# model build plus warm-up (and possibly another out-of-memory on a machine that is swapping).
BISECT_RESOLUTION = 16

# Timed steps per re-timing visit (after its warm-up). The visits' value is in their number and
# their interleaving, not their length: one step each keeps two rounds of three finalists
# within about the search's own time even when the finalists are its three largest sizes (the
# search spends 1 + steps step-times on every size, and sizes double).
RETIME_STEPS = 1

# A size "beats" the fastest so far when its samples/s is at least this much higher. The issue's
# yardstick for a pick is 5% of the best size; a gain below that is within the noise of a
# 3-step trial on a shared CPU, and doubling past it costs twice the last trial's time.
PLATEAU_GAIN = 0.05


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
            "samples_per_s": _round(self.samples_per_s),
            "peak_memory_bytes": self.peak_memory_bytes,
            "status": self.status,
        }


@dataclass(frozen=True)
class Finalist:
    """One of the fastest sizes of the search, timed again in the re-timing.

    Attributes:
        batch_size: samples per step.
        search_samples_per_s: what its trial in the search measured.
        samples_per_s: batch size / the median of its measurements: the search's median step
            time and each re-timing visit's step time (None when it failed in the re-timing).
        status: ``ok``, or ``oom`` / ``over_cap`` when a re-timing visit ran out of memory or
            peaked above the cap (it is then out of the running).
        step_seconds: the re-timing visits' step times, in the order run (warm-ups excluded).
    """

    batch_size: int
    search_samples_per_s: float | None
    samples_per_s: float | None
    status: TrialStatus
    step_seconds: tuple[float, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The finalist as the ``--json`` document lists it."""
        return {
            "batch_size": self.batch_size,
            "search_samples_per_s": _round(self.search_samples_per_s),
            "samples_per_s": _round(self.samples_per_s),
            "status": self.status,
        }


@dataclass(frozen=True)
class Retiming:
    """The fastest sizes of the search timed again, interleaved, after it.

    Attributes:
        rounds: rounds run (``retime_rounds``).
        order: the batch sizes in the order each round visited them.
        finalists: the sizes re-timed, fastest in the search first.
        seconds: the re-timing's wall-clock time.
    """

    rounds: int
    order: tuple[tuple[int, ...], ...]
    finalists: tuple[Finalist, ...]
    seconds: float

    def best(self) -> Finalist | None:
        """The fastest finalist that kept fitting (ties: the smaller size); None if none did."""
        ok = [f for f in self.finalists if f.status == "ok" and f.samples_per_s is not None]
        if not ok:
            return None
        return max(ok, key=lambda f: (f.samples_per_s, -f.batch_size))

    def dropped(self) -> list[Finalist]:
        """Finalists that ran out of memory or over the cap when re-timed."""
        return [f for f in self.finalists if f.status != "ok"]

    def to_json(self) -> dict[str, object]:
        """The ``retiming`` object of the ``--json`` document."""
        return {
            "rounds": self.rounds,
            "order": [list(r) for r in self.order],
            "seconds": round(self.seconds, 3),
            "finalists": [f.to_json() for f in self.finalists],
        }


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found.

    Attributes:
        device: the device's name (``device_label``).
        trials: every trial of the search, in the order run.
        recommended: the fitting size with the highest samples/s, as the re-timing measured
            it when there was one (None: nothing fit).
        largest_fit: the largest size that fit (None: nothing fit).
        reason: why the search stopped where it did and why the recommendation won.
        memory_budget_bytes: the device's budget the cap was taken from (None: no cap).
        memory_cap_bytes: ``memory_fraction`` x budget (None: no cap).
        retiming: the finalists timed again after the search (None: fewer than two sizes fit,
            or ``finalists`` is 1).
        plateau: the size after which the doubling stopped because ``cfg.plateau`` sizes in a
            row trained no faster (None: it stopped on a failure or a limit).
    """

    device: str
    trials: tuple[Trial, ...]
    recommended: int | None
    largest_fit: int | None
    reason: str
    memory_budget_bytes: int | None = None
    memory_cap_bytes: int | None = None
    retiming: Retiming | None = None
    plateau: int | None = None

    def to_json(self) -> dict[str, object]:
        """The ``fintrain probe-batch --json`` document."""
        return {
            "device": self.device,
            "recommended": self.recommended,
            "largest_fit": self.largest_fit,
            "stopped_on_plateau": self.plateau is not None,
            "reason": self.reason,
            "memory_budget_bytes": self.memory_budget_bytes,
            "memory_cap_bytes": self.memory_cap_bytes,
            "trials": [t.to_json() for t in self.trials],
            "retiming": None if self.retiming is None else self.retiming.to_json(),
        }


def _round(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 3)


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
    on_retime: Callable[[int, int], None] | None = None,
) -> ProbeResult:
    """Find the batch sizes that fit and the one that trains fastest.

    Sizes double from ``cfg.min_batch`` up to ``cfg.max_batch`` or ``n_train`` (whichever is
    smaller), stopping at the first that runs out of memory or whose peak exceeds
    ``cfg.memory_fraction`` of the meter's budget, or once ``cfg.plateau`` sizes in a row each
    failed to beat the fastest so far by ``PLATEAU_GAIN`` (a CPU's throughput flattens long
    before its memory runs out). With ``cfg.search == "binsearch"`` the gap
    between the last size that fit and the first that did not is then bisected. Then the
    ``cfg.finalists`` fastest sizes that fit are timed again (see ``retime``) and the pick is
    the fastest by the median of all their step times.

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
        on_start: called with each size before its trial in the search (progress display).
        on_trial: called with each finished trial of the search.
        on_retime: called with the size and the round (from 1) before each re-timing visit.

    Returns:
        The trials, the re-timing and the choice; ``recommended`` is None when not even the
        smallest size fit.

    Raises:
        ProbeError: the training set is empty.
        Exception: any error from a step that is not out-of-memory, unchanged.
    """
    limit = upper_limit(cfg, n_train)
    budget = meter.budget_bytes()
    cap = int(budget * cfg.memory_fraction) if budget is not None else None
    meter.start()
    trials: list[Trial] = []

    def measure(size: int, steps: int) -> tuple[TrialStatus, tuple[float, ...], int | None]:
        """One fresh model at ``size``, ``steps`` timed steps: status, step times and peak; memory
        released."""
        failed = False
        try:
            times, peak = run_trial(size, make_step, meter, steps, clock)
        except Exception as exc:
            if not is_oom(exc):
                raise
            log.info("batch size %d ran out of memory: %s", size, exc)
            failed = True
        # Outside the except block the traceback (and the frames holding the model, the
        # optimizer and the activations) is gone, so the memory can really be returned; after
        # a size that fit, the next one should start from an empty cache, not on top of it.
        release()
        if failed:
            return "oom", (), None
        status: TrialStatus = "over_cap" if cap is not None and peak is not None and peak > cap else "ok"
        return status, times, peak

    def attempt(size: int) -> Trial:
        if on_start is not None:
            on_start(size)
        status, times, peak = measure(size, cfg.steps)
        if status == "oom":
            trial = Trial(size, "oom", None, None)
        else:
            trial = Trial(size, status, _throughput(size, times), peak, times)
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
        return trial

    first_failure: Trial | None = None
    plateau: int | None = None
    fastest, stale = 0.0, 0
    for size in doubling_sizes(cfg.min_batch, limit):
        trial = attempt(size)
        if not trial.fits:
            first_failure = trial
            break
        rate = trial.samples_per_s or 0.0
        if rate > fastest * (1 + PLATEAU_GAIN):
            stale = 0
        else:
            stale += 1
        fastest = max(fastest, rate)
        if cfg.plateau and stale >= cfg.plateau and size < limit:
            plateau = size
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

    retiming = retime(trials, cfg, measure, clock, on_retime)
    return choose(trials, device=device, cfg=cfg, limit=limit, n_train=n_train,
                  budget=budget, cap=cap, retiming=retiming, plateau=plateau)


def _throughput(batch_size: int, times: tuple[float, ...]) -> float | None:
    """Batch size / median step time (None without a positive time)."""
    if not times:
        return None
    median_s = statistics.median(times)
    return batch_size / median_s if median_s > 0 else None


def finalists_of(trials: list[Trial], count: int) -> list[Trial]:
    """The ``count`` fastest trials that fit (ties: the smaller size first)."""
    fitting = [t for t in trials if t.fits and t.samples_per_s is not None]
    fitting.sort(key=lambda t: (-(t.samples_per_s or 0.0), t.batch_size))
    return fitting[:count]


def retime(
    trials: list[Trial],
    cfg: ProbeConfig,
    measure: Callable[[int, int], tuple[TrialStatus, tuple[float, ...], int | None]],
    clock: Callable[[], float] = time.perf_counter,
    on_retime: Callable[[int, int], None] | None = None,
) -> Retiming | None:
    """Time the fastest fitting sizes again, interleaved, so one burst of load cannot pick.

    The search times each size once, one after another: anything else the machine runs during
    one size's trial (another training run, a build, a browser tab) makes that size look slow
    and a rival look fastest. The ``cfg.finalists`` fastest sizes are therefore visited again in
    ``cfg.retime_rounds`` rounds, in ascending size and reversed every other round (A B C,
    C B A), so a load that rises or falls through the re-timing hits every finalist alike. Each
    visit is a fresh model, a warm-up and one timed step (no two finalists' models are alive at
    once, so memory is what the search measured). A finalist's samples/s is its size over the
    median of its measurements: the search's median step and each visit's step. With the
    default two rounds that is three measurements, so one disturbed by other load is outvoted.

    Args:
        trials: the search's trials.
        cfg: the probe settings (``finalists``, ``retime_rounds``).
        measure: runs one fresh model at a size for a number of timed steps: its status, step
            times and peak memory.
        clock: seconds, monotonic (for the re-timing's duration).
        on_retime: called with the size and the round (from 1) before each visit.

    Returns:
        The re-timing, or None when fewer than two sizes fit or ``cfg.finalists`` is 1.
    """
    chosen = finalists_of(trials, cfg.finalists)
    if len(chosen) < 2:
        return None
    t0 = clock()
    times: dict[int, list[float]] = {t.batch_size: [] for t in chosen}
    failed: dict[int, TrialStatus] = {}
    order: list[tuple[int, ...]] = []
    ascending = sorted(times)
    for round_index in range(cfg.retime_rounds):
        visits = ascending if round_index % 2 == 0 else ascending[::-1]
        ran = []
        for size in visits:
            if size in failed:
                continue
            if on_retime is not None:
                on_retime(size, round_index + 1)
            status, step_times, _peak = measure(size, RETIME_STEPS)
            ran.append(size)
            if status != "ok":
                # The machine's memory changed since the search (another process took some):
                # a size that no longer fits is no longer a candidate.
                log.info("batch size %d no longer fits when re-timed (%s)", size, status)
                failed[size] = status
            else:
                times[size].extend(step_times)
        order.append(tuple(ran))
    finalists = []
    for trial in chosen:
        size = trial.batch_size
        if size in failed:
            finalists.append(Finalist(size, trial.samples_per_s, None, failed[size], tuple(times[size])))
        else:
            # One value per measurement, the search's (the median of its steps) and each
            # visit's, so that each counts once however many steps it timed.
            measured = (statistics.median(trial.step_seconds), *times[size])
            finalists.append(Finalist(size, trial.samples_per_s, _throughput(size, measured), "ok",
                                      tuple(times[size])))
    return Retiming(cfg.retime_rounds, tuple(order), tuple(finalists), clock() - t0)


def choose(
    trials: list[Trial],
    *,
    device: str,
    cfg: ProbeConfig,
    limit: int,
    n_train: int | None,
    budget: int | None,
    cap: int | None,
    retiming: Retiming | None = None,
    plateau: int | None = None,
) -> ProbeResult:
    """The recommendation (highest samples/s among fitting sizes, as re-timed when they were)
    and the largest fit, with why (``plateau``: the size the doubling stopped at because
    larger sizes trained no faster)."""
    dropped = {f.batch_size: f for f in retiming.dropped()} if retiming is not None else {}
    fitting = [t for t in trials if t.fits and t.batch_size not in dropped]
    failures = sorted((t for t in trials if not t.fits), key=lambda t: t.batch_size)
    retimed = {f.batch_size: f for f in retiming.finalists} if retiming is not None else {}
    if not fitting:
        smallest = failures[0] if failures else None
        why = _failure_text(smallest, cfg, cap) if smallest else "no trial ran"
        if dropped:
            why = _dropped_text(list(dropped.values()))
        return ProbeResult(device, tuple(trials), None, None,
                           f"no batch size fits: {why}", budget, cap, retiming)

    def rate(trial: Trial) -> float | None:
        finalist = retimed.get(trial.batch_size)
        return finalist.samples_per_s if finalist is not None else trial.samples_per_s

    best_finalist = retiming.best() if retiming is not None else None
    if best_finalist is not None:
        best = next(t for t in fitting if t.batch_size == best_finalist.batch_size)
    else:
        # Ties go to the smaller size: the same speed with less memory and more updates per epoch.
        best = max(fitting, key=lambda t: (t.samples_per_s or 0.0, -t.batch_size))
    largest = max(t.batch_size for t in fitting)
    above = [t for t in failures if t.batch_size > largest]
    if above:
        stop = f"{largest} is the largest that fits: {_failure_text(above[0], cfg, cap)}"
    elif plateau is not None:
        stop = (f"{largest} is the largest tried: the last {cfg.plateau} sizes were not "
                f"{PLATEAU_GAIN:.0%} faster than the fastest before them, so larger ones were not "
                "tried (--plateau 0 tries every size up to --max-batch)")
    elif n_train is not None and limit == n_train and n_train < cfg.max_batch:
        stop = f"{largest} is the largest tried: the training set has only {n_train:,} samples"
    else:
        stop = f"{largest} is the largest tried: max_batch is {cfg.max_batch}"
    if best.batch_size == largest:
        pick = f"{best.batch_size} trains fastest ({_rate(rate(best))})"
    else:
        largest_trial = next(t for t in fitting if t.batch_size == largest)
        pick = (f"{best.batch_size} trains fastest ({_rate(rate(best))}; {largest} gives "
                f"{_rate(rate(largest_trial))})")
    parts = [pick]
    if best_finalist is not None and retiming is not None:
        rivals = sorted(f.batch_size for f in retiming.finalists if f.batch_size != best.batch_size)
        parts.append(f"re-timed against {_sizes_text(rivals)} in {retiming.rounds} interleaved "
                     f"round{'s' if retiming.rounds > 1 else ''}")
        search_best = max((t for t in trials if t.fits),
                          key=lambda t: (t.samples_per_s or 0.0, -t.batch_size))
        if search_best.batch_size != best.batch_size:
            parts.append(f"the search alone had {search_best.batch_size} fastest "
                         f"({_rate(search_best.samples_per_s)})")
    if dropped:
        parts.append(_dropped_text(list(dropped.values())))
    parts.append(stop)
    return ProbeResult(device, tuple(trials), best.batch_size, largest, "; ".join(parts),
                       budget, cap, retiming, plateau)


def _sizes_text(sizes: list[int]) -> str:
    words = [str(s) for s in sizes]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _dropped_text(dropped: list[Finalist]) -> str:
    what = {"oom": "ran out of memory", "over_cap": "peaked above the memory cap"}
    return ", ".join(f"{f.batch_size} {what.get(f.status, f.status)} when re-timed" for f in dropped)


def _rate(samples_per_s: float | None) -> str:
    return "?" if samples_per_s is None else f"{samples_per_s:,.1f} samples/s"


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
