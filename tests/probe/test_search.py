"""The batch-size search with fake steps, memory and clock: every backend's out-of-memory, the
memory cap, the throughput choice and the limits."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fintrain.probe import SampledMeter, doubling_sizes, search_batch_size
from fintrain.probe.search import BISECT_RESOLUTION, ProbeError

MIB = 1024**2
GIB = 1024**3


def meter_of(device, budget=None, relative=False):
    return SampledMeter(device.read_memory, lambda: budget, relative=relative)


def run(device, cfg, clock, **kw):
    return search_batch_size(device.make_step, meter_of(device, kw.pop("budget", None)), cfg,
                             device="fake", clock=clock, release=device.release, **kw)


@pytest.mark.parametrize(
    "backend", ["mps", "mps-buffer-size", "cuda", "cuda-runtime-error", "cudnn", "cpu", "cpu-memoryerror"]
)
def test_out_of_memory_above_a_threshold_gives_the_largest_fitting_size(
    backend, oom_errors, fake_device, probe_cfg, clock
):
    device = fake_device(fails_above=300, error=lambda b: oom_errors[backend]())
    result = run(device, probe_cfg(), clock)
    assert [t.batch_size for t in result.trials] == [8, 16, 32, 64, 128, 256, 512]
    assert [t.status for t in result.trials] == ["ok"] * 6 + ["oom"]
    assert result.largest_fit == 256
    assert "512 ran out of memory" in result.reason
    oom = result.trials[-1]
    assert oom.samples_per_s is None
    # Nothing larger was tried after the first out-of-memory; every model built (the trials'
    # and the re-timing's) was cleaned up.
    assert max(device.built) == 512
    assert device.released == len(device.built) == 7 + 2 * 3


def test_out_of_memory_while_building_the_model_counts_too(oom_errors, fake_device, probe_cfg, clock):
    device = fake_device(fails_above=100, error=lambda b: oom_errors["mps"](), fail_on_build=True)
    result = run(device, probe_cfg(), clock)
    assert result.largest_fit == 64
    assert result.trials[-1].status == "oom"


def test_binsearch_bisects_between_the_last_fit_and_the_first_failure(
    oom_errors, fake_device, probe_cfg, clock
):
    device = fake_device(fails_above=300, error=lambda b: oom_errors["mps"]())
    result = run(device, probe_cfg(search="binsearch"), clock)
    sizes = [t.batch_size for t in result.trials]
    assert sizes[:7] == [8, 16, 32, 64, 128, 256, 512]
    assert all(256 < s < 512 for s in sizes[7:])
    assert 300 - 300 // BISECT_RESOLUTION <= result.largest_fit <= 300
    assert all((t.status == "ok") == (t.batch_size <= 300) for t in result.trials)


@settings(max_examples=60)
@given(
    fails_above=st.integers(1, 5000),
    min_batch=st.integers(1, 64),
    search=st.sampled_from(["power", "binsearch"]),
)
def test_fitting_sizes_are_exactly_those_below_the_failure(fails_above, min_batch, search):
    from fintrain.config import ProbeConfig

    now = [0.0]

    def make_step(batch_size):
        def step():
            if batch_size > fails_above:
                raise RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)")
            now[0] += 0.01
        return step

    cfg = ProbeConfig(min_batch=min_batch, max_batch=4096, search=search)
    result = search_batch_size(make_step, SampledMeter(lambda: 0, lambda: None), cfg,
                               device="fake", clock=lambda: now[0])
    assert all(t.fits == (t.batch_size <= fails_above) for t in result.trials)
    if fails_above < min_batch:
        assert result.largest_fit is None
        return
    best_power = max(s for s in doubling_sizes(min_batch, 4096) if s <= fails_above)
    assert best_power <= result.largest_fit <= fails_above
    if search == "binsearch" and fails_above < 4096:
        assert fails_above - result.largest_fit <= max(1, result.largest_fit // BISECT_RESOLUTION)


def test_unrelated_runtime_error_propagates(fake_device, probe_cfg, clock):
    shape_error = RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x20 and 16x192)")
    device = fake_device(fails_above=32, error=lambda b: shape_error)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run(device, probe_cfg(), clock)


def test_other_exception_types_propagate(fake_device, probe_cfg, clock):
    device = fake_device(fails_above=8, error=lambda b: ValueError("bad window shape"))
    with pytest.raises(ValueError, match="bad window shape"):
        run(device, probe_cfg(), clock)


def test_memory_is_released_after_the_except_block(oom_errors, probe_cfg, clock):
    class Model:
        pass

    models: list[weakref.ref] = []
    seen: list[tuple[object, bool]] = []

    def make_step(batch_size):
        model = Model()
        models.append(weakref.ref(model))

        def step():
            if batch_size > 16:
                raise oom_errors["mps"]()
            model.touched = True

        return step

    def release():
        gc.collect()  # what free_memory does before emptying the backend's cache
        seen.append((sys.exc_info()[0], models[-1]() is None))

    meter = SampledMeter(lambda: 0, lambda: None)
    # The clock never moves here, so no size is faster than another: no plateau stop either.
    result = search_batch_size(make_step, meter, probe_cfg(plateau=0), device="fake", clock=clock,
                               release=release)
    assert result.largest_fit == 16
    # One release per trial; each outside any except block, with the trial's model gone.
    assert seen == [(None, True)] * 3


def test_memory_cap_with_faked_readings(fake_device, probe_cfg, clock):
    # 100 MiB + 1 MiB per sample against a 1 GiB budget at 50%: 512 MiB allows 412 samples.
    device = fake_device(base_bytes=100 * MIB, bytes_per_sample=MIB)
    result = run(device, probe_cfg(memory_fraction=0.5), clock, budget=GIB)
    assert [t.status for t in result.trials] == ["ok"] * 6 + ["over_cap"]
    over = result.trials[-1]
    assert over.batch_size == 512 and over.peak_memory_bytes == 612 * MIB
    assert over.samples_per_s is not None  # it ran; it just does not count as fitting
    assert result.largest_fit == 256 and result.recommended <= 256
    assert result.memory_cap_bytes == 512 * MIB
    assert "above the cap" in result.reason and "50%" in result.reason
    assert result.trials[5].peak_memory_bytes == 356 * MIB


def test_memory_cap_with_binsearch_stays_below_the_cap(fake_device, probe_cfg, clock):
    device = fake_device(base_bytes=100 * MIB, bytes_per_sample=MIB)
    result = run(device, probe_cfg(memory_fraction=0.5, search="binsearch"), clock, budget=GIB)
    assert 412 - 412 // BISECT_RESOLUTION <= result.largest_fit <= 412
    assert all(t.peak_memory_bytes <= 512 * MIB for t in result.trials if t.status == "ok")


def test_relative_meter_counts_only_memory_above_the_start(fake_device, probe_cfg, clock):
    # A CPU process already holding 6 GiB (data, libraries) is not charged for it.
    device = fake_device(base_bytes=6 * GIB, bytes_per_sample=MIB)
    meter = SampledMeter(device.read_memory, lambda: GIB, relative=True)
    result = search_batch_size(device.make_step, meter, probe_cfg(max_batch=256), device="fake",
                               clock=clock)
    assert all(t.status == "ok" for t in result.trials)
    assert result.trials[-1].peak_memory_bytes == 256 * MIB


def test_no_cap_when_the_budget_is_unknown(fake_device, probe_cfg, clock):
    device = fake_device(base_bytes=100 * GIB)
    result = run(device, probe_cfg(max_batch=64, memory_fraction=0.1), clock, budget=None)
    assert result.largest_fit == 64 and result.memory_cap_bytes is None


def test_recommendation_is_the_highest_throughput_not_the_largest(fake_device, probe_cfg, clock):
    step_s = {8: 0.1, 16: 0.1, 32: 0.16, 64: 0.4, 128: 1.0}  # 80, 160, 200, 160, 128 samples/s
    device = fake_device(seconds=lambda b: step_s[b])
    result = run(device, probe_cfg(max_batch=128), clock)
    rates = {t.batch_size: t.samples_per_s for t in result.trials}
    assert rates == pytest.approx({8: 80, 16: 160, 32: 200, 64: 160, 128: 128})
    assert result.recommended == 32
    assert result.largest_fit == 128
    assert "32 trains fastest" in result.reason and "max_batch is 128" in result.reason


def test_throughput_uses_the_median_step_so_one_hiccup_does_not_decide(probe_cfg, clock):
    # Batch 64 is faster (400 vs 320 samples/s), but one of its steps is hit by a 2 s stall.
    times = {32: iter([0.1, 0.1, 0.1, 0.1]), 64: iter([0.16, 0.16, 2.0, 0.16])}

    def make_step(batch_size):
        def step():
            clock.now += next(times[batch_size])
        return step

    meter = SampledMeter(lambda: 0, lambda: None)
    result = search_batch_size(make_step, meter, probe_cfg(min_batch=32, max_batch=64, finalists=1),
                               device="fake", clock=clock)
    assert [t.samples_per_s for t in result.trials] == pytest.approx([320, 400])
    assert result.recommended == 64 and result.retiming is None


def test_each_trial_builds_a_fresh_model_and_runs_warmup_plus_steps(fake_device, probe_cfg, clock):
    device = fake_device()
    run(device, probe_cfg(max_batch=64, steps=5, finalists=1), clock)
    assert device.built == [8, 16, 32, 64]
    assert device.calls == {8: 6, 16: 6, 32: 6, 64: 6}


def test_each_retiming_visit_is_a_fresh_model_with_warmup_and_one_step(fake_device, probe_cfg, clock):
    # Every size runs at 100 samples/s: the finalists are the three smallest (ties: smaller).
    device = fake_device(seconds=lambda b: 0.01 * b)
    result = run(device, probe_cfg(max_batch=64, steps=5, plateau=0), clock)
    assert device.built == [8, 16, 32, 64] + [8, 16, 32] + [32, 16, 8]
    assert device.calls == {8: 6 + 2 * 2, 16: 6 + 2 * 2, 32: 6 + 2 * 2, 64: 6}
    assert result.retiming.order == ((8, 16, 32), (32, 16, 8))
    assert [f.step_seconds for f in result.retiming.finalists] == [
        pytest.approx((0.01 * b, 0.01 * b)) for b in (8, 16, 32)]


def test_warmup_step_is_not_timed(probe_cfg, clock):
    count = {"n": 0}

    def make_step(batch_size):
        def step():
            count["n"] += 1
            clock.now += 10.0 if count["n"] == 1 else 0.1  # first call compiles kernels
        return step

    result = search_batch_size(make_step, SampledMeter(lambda: 0, lambda: None),
                               probe_cfg(min_batch=8, max_batch=8), device="fake", clock=clock)
    assert result.trials[0].samples_per_s == pytest.approx(80)


def test_sizes_stop_at_the_training_set_size(fake_device, probe_cfg, clock):
    device = fake_device()
    result = run(device, probe_cfg(), clock, n_train=100)
    assert [t.batch_size for t in result.trials] == [8, 16, 32, 64, 100]
    assert "only 100 samples" in result.reason


def test_sizes_stop_at_max_batch_that_is_not_a_power_of_two(fake_device, probe_cfg, clock):
    device = fake_device()
    result = run(device, probe_cfg(max_batch=100), clock)
    assert [t.batch_size for t in result.trials] == [8, 16, 32, 64, 100]
    assert "max_batch is 100" in result.reason


def test_nothing_fits(oom_errors, fake_device, probe_cfg, clock):
    device = fake_device(fails_above=4, error=lambda b: oom_errors["cuda"]())
    result = run(device, probe_cfg(search="binsearch"), clock)
    assert result.recommended is None and result.largest_fit is None
    assert "no batch size fits: 8 ran out of memory" in result.reason
    # Bisection never goes below min_batch: those sizes were not asked for.
    assert device.built == [8]


def test_empty_training_set_is_an_error(fake_device, probe_cfg, clock):
    with pytest.raises(ProbeError, match="empty"):
        run(fake_device(), probe_cfg(), clock, n_train=0)


def test_probe_error_is_a_fintrain_error_importable_from_both_places():
    import fintrain.probe
    from fintrain import errors

    assert ProbeError is errors.ProbeError is fintrain.probe.ProbeError
    assert issubclass(ProbeError, errors.FintrainError) and ProbeError.exit_code == 1


def test_progress_callbacks_see_every_trial_in_order(oom_errors, fake_device, probe_cfg, clock):
    events = []
    device = fake_device(fails_above=20, error=lambda b: oom_errors["cpu"]())
    run(device, probe_cfg(), clock, on_start=lambda b: events.append(("start", b)),
        on_trial=lambda t: events.append((t.status, t.batch_size)))
    assert events == [("start", 8), ("ok", 8), ("start", 16), ("ok", 16), ("start", 32), ("oom", 32)]


def test_json_document_has_the_documented_fields(fake_device, probe_cfg, clock):
    result = run(fake_device(seconds=lambda b: 0.01 * b), probe_cfg(max_batch=16), clock, budget=GIB)
    doc = result.to_json()
    assert {"device", "recommended", "largest_fit", "trials"} <= set(doc)
    assert doc["device"] == "fake"
    assert doc["trials"][0] == {"batch_size": 8, "samples_per_s": 100.0,
                                "peak_memory_bytes": 108 * MIB, "status": "ok"}
    assert doc["retiming"] == {
        "rounds": 2, "order": [[8, 16], [16, 8]], "seconds": pytest.approx(2 * 2 * (0.08 + 0.16)),
        "finalists": [
            {"batch_size": 8, "search_samples_per_s": 100.0, "samples_per_s": 100.0, "status": "ok"},
            {"batch_size": 16, "search_samples_per_s": 100.0, "samples_per_s": 100.0, "status": "ok"},
        ],
    }


def test_doubling_sizes():
    assert doubling_sizes(8, 256) == [8, 16, 32, 64, 128, 256]
    assert doubling_sizes(8, 100) == [8, 16, 32, 64, 100]
    assert doubling_sizes(3, 20) == [3, 6, 12, 20]
    assert doubling_sizes(8, 8) == [8]
    assert doubling_sizes(64, 10) == [10]


def bursty_device(true_seconds, burst):
    """Steps at ``true_seconds[B]`` each, ``burst[(B, k)]`` times slower in the k-th model built
    for B (k = 0: the search's trial; 1, 2, ...: the re-timing's visits)."""
    clock = {"now": 0.0}
    built: list[int] = []

    def make_step(batch_size):
        visit = built.count(batch_size)
        built.append(batch_size)
        factor = burst.get((batch_size, visit), 1.0)

        def step():
            clock["now"] += true_seconds[batch_size] * factor

        return step

    return make_step, (lambda: clock["now"]), built


def test_a_burst_on_the_rivals_during_the_search_does_not_pick(probe_cfg):
    # True speeds: 8: 100, 16: 150, 32: 200, 64: 160 samples/s. Another process takes the CPU
    # while 32 and 64 run in the search (3x slower), so 16 looks fastest; the re-timing sees 32.
    true_s = {8: 0.08, 16: 16 / 150, 32: 0.16, 64: 0.4}
    make_step, clock, built = bursty_device(true_s, {(32, 0): 3.0, (64, 0): 3.0})
    result = search_batch_size(make_step, SampledMeter(lambda: 0, lambda: None),
                               probe_cfg(max_batch=64), device="fake", clock=clock)
    search_rates = {t.batch_size: t.samples_per_s for t in result.trials}
    assert max(search_rates, key=search_rates.get) == 16
    assert result.recommended == 32
    retimed = {f.batch_size: f for f in result.retiming.finalists}
    assert set(retimed) == {8, 16, 32}  # the three fastest in the search
    assert retimed[32].search_samples_per_s == pytest.approx(200 / 3)
    assert retimed[32].samples_per_s == pytest.approx(200)  # the burst is outvoted
    assert retimed[16].samples_per_s == pytest.approx(150)
    assert "32 trains fastest (200.0 samples/s" in result.reason
    assert "re-timed against 8 and 16 in 2 interleaved rounds" in result.reason
    assert "the search alone had 16 fastest" in result.reason
    # Fresh models for the re-timing, in ascending then descending order.
    assert built[4:] == [8, 16, 32, 32, 16, 8]


def test_a_burst_during_one_retiming_visit_does_not_pick_either(probe_cfg):
    # 32 is truly fastest; a burst hits its first re-timing visit (5x slower), which alone
    # would make it the slowest finalist. Two measurements of three still say it is fastest.
    true_s = {8: 0.08, 16: 16 / 150, 32: 0.16, 64: 0.4}
    make_step, clock, _ = bursty_device(true_s, {(32, 1): 5.0})
    result = search_batch_size(make_step, SampledMeter(lambda: 0, lambda: None),
                               probe_cfg(max_batch=64), device="fake", clock=clock)
    assert result.recommended == 32
    assert result.retiming.best().samples_per_s == pytest.approx(200)


def test_more_rounds_outvote_more_bursts(probe_cfg):
    # Bursts on 32 in the search and in the first re-timing round: with four rounds, three of
    # its five measurements are clean, and so is their median.
    true_s = {8: 0.08, 16: 16 / 150, 32: 0.16}
    make_step, clock, built = bursty_device(true_s, {(32, 0): 3.0, (32, 1): 3.0})
    result = search_batch_size(make_step, SampledMeter(lambda: 0, lambda: None),
                               probe_cfg(max_batch=32, retime_rounds=4), device="fake", clock=clock)
    assert result.recommended == 32
    assert result.retiming.order == ((8, 16, 32), (32, 16, 8), (8, 16, 32), (32, 16, 8))
    assert len(built) == 3 + 4 * 3


def test_a_finalist_that_no_longer_fits_when_retimed_is_dropped(fake_device, probe_cfg, clock):
    # Larger is faster here (a fixed 10 ms per step plus 1 ms per sample), so 64, 32 and 16 are
    # the finalists. 64 peaks at 640 MiB in the search, under the cap of 819 MiB (80% of 1 GiB);
    # then another process takes 400 MiB and its re-timing visit peaks above the cap.
    device = fake_device(base_bytes=0, bytes_per_sample=10 * MIB, seconds=lambda b: 0.01 + 0.001 * b)
    real_make_step = device.make_step

    def make_step(batch_size):
        if batch_size == 64 and device.built.count(64) == 1:
            device.base_bytes = 400 * MIB
        return real_make_step(batch_size)

    meter = SampledMeter(device.read_memory, lambda: GIB)
    result = search_batch_size(make_step, meter, probe_cfg(max_batch=64), device="fake",
                               clock=clock, release=device.release)
    assert [t.status for t in result.trials] == ["ok"] * 4
    retimed = {f.batch_size: f for f in result.retiming.finalists}
    assert retimed[64].status == "over_cap" and retimed[64].samples_per_s is None
    assert result.retiming.order == ((16, 32, 64), (32, 16))  # not visited again once out
    assert result.recommended == 32 and result.largest_fit == 32
    assert "64 peaked above the memory cap when re-timed" in result.reason
    assert result.to_json()["retiming"]["finalists"][0] == {
        "batch_size": 64, "search_samples_per_s": pytest.approx(864.865, abs=1e-3),
        "samples_per_s": None, "status": "over_cap"}


def test_no_retiming_with_one_finalist_or_one_size_that_fits(fake_device, probe_cfg, clock):
    off = run(fake_device(), probe_cfg(max_batch=64, finalists=1), clock)
    assert off.retiming is None and off.to_json()["retiming"] is None
    device = fake_device(fails_above=8)
    alone = run(device, probe_cfg(), clock)
    assert alone.recommended == 8 and alone.retiming is None
    assert device.built == [8, 16]


def test_retiming_settings_are_validated(probe_cfg):
    from pydantic import ValidationError

    for bad in ({"finalists": 0}, {"finalists": 9}, {"retime_rounds": 0}, {"retime_rounds": 11}):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            probe_cfg(**bad)


CPU_RATES = {8: 50.0, 16: 80.0, 32: 94.0, 64: 96.0, 128: 97.0}


def cpu_like(b):
    """A CPU's step time: samples/s rises up to 32, then stays flat (within 5%) however large
    the batch, the way a 2m model's does on two cores."""
    return b / CPU_RATES.get(b, 97.5)


def test_doubling_stops_once_two_sizes_in_a_row_are_no_faster(fake_device, probe_cfg, clock):
    device = fake_device(seconds=cpu_like)
    result = run(device, probe_cfg(max_batch=4096), clock)
    # 32 is the last size 5% faster than all before it; 64 and 128 are not: no 256 and up.
    assert [t.batch_size for t in result.trials] == [8, 16, 32, 64, 128]
    assert result.plateau == 128 and result.to_json()["stopped_on_plateau"] is True
    assert result.largest_fit == 128
    assert "128 is the largest tried: the last 2 sizes were not 5% faster" in result.reason
    assert "--plateau 0" in result.reason
    assert max(device.built) == 128


def test_plateau_counts_sizes_in_a_row_and_zero_switches_it_off(fake_device, probe_cfg, clock):
    # 16 is flat, 32 is 10% faster again, then flat: with plateau 2 one flat size is not enough.
    rates = {8: 100.0, 16: 101.0, 32: 111.0, 64: 112.0, 128: 113.0, 256: 114.0}
    device = fake_device(seconds=lambda b: b / rates.get(b, 114.0))
    assert [t.batch_size for t in run(device, probe_cfg(max_batch=256), clock).trials] == [
        8, 16, 32, 64, 128]
    once = run(fake_device(seconds=lambda b: b / rates.get(b, 114.0)),
               probe_cfg(max_batch=256, plateau=1), clock)
    assert [t.batch_size for t in once.trials] == [8, 16]
    full = run(fake_device(seconds=lambda b: b / rates.get(b, 114.0)),
               probe_cfg(max_batch=256, plateau=0), clock)
    assert [t.batch_size for t in full.trials] == [8, 16, 32, 64, 128, 256]
    assert full.plateau is None and full.to_json()["stopped_on_plateau"] is False
    assert "max_batch is 256" in full.reason


def test_a_plateau_at_the_last_size_is_not_a_plateau_stop(fake_device, probe_cfg, clock):
    result = run(fake_device(seconds=cpu_like), probe_cfg(max_batch=128), clock)
    assert [t.batch_size for t in result.trials] == [8, 16, 32, 64, 128]
    assert result.plateau is None and "max_batch is 128" in result.reason
