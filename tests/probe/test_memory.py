"""Memory meters: what each backend's peak and budget mean to the probe."""

from __future__ import annotations

import threading

import torch

from fintrain.probe import CudaMeter, SampledMeter, meter_for
from fintrain.probe import memory as memory_mod

MIB = 1024**2


def test_thread_sampling_catches_a_peak_inside_a_step():
    # The step goes up to 900 MiB and back down before it returns, as a CPU step's activations
    # do; sampling only at step boundaries would see 100 MiB.
    level = {"bytes": 100 * MIB}
    high_seen = threading.Event()

    def read():
        if level["bytes"] > 100 * MIB:
            high_seen.set()
        return level["bytes"]

    threaded = SampledMeter(read, lambda: None, interval_s=0.001)
    boundary_only = SampledMeter(lambda: level["bytes"], lambda: None)
    for meter in (threaded, boundary_only):
        meter.start()
        meter.begin_trial()
        level["bytes"] = 900 * MIB
        if meter is threaded:
            assert high_seen.wait(10), "the sampling thread never read the peak"
        level["bytes"] = 100 * MIB
        meter.sample()
    assert threaded.end_trial() == 900 * MIB
    assert boundary_only.end_trial() == 100 * MIB


def test_relative_meter_starts_from_the_probe_start_and_resets_per_trial():
    level = {"bytes": 2000 * MIB}
    meter = SampledMeter(lambda: level["bytes"], lambda: 8000 * MIB, relative=True)
    assert meter.budget_bytes() == 8000 * MIB
    meter.start()
    meter.begin_trial()
    level["bytes"] = 2300 * MIB
    meter.sample()
    assert meter.end_trial() == 300 * MIB
    level["bytes"] = 2000 * MIB
    meter.begin_trial()
    level["bytes"] = 2050 * MIB
    meter.sample()
    assert meter.end_trial() == 50 * MIB


def test_cpu_meter_sees_a_real_allocation_during_the_trial():
    meter = meter_for(torch.device("cpu"))
    assert meter.budget_bytes() > 0
    meter.start()
    meter.begin_trial()
    block = torch.ones(64 * MIB, dtype=torch.float32)  # 256 MiB, touched
    meter.sample()
    del block
    big = meter.end_trial()
    meter.begin_trial()
    small = torch.ones(1024)
    meter.sample()
    del small
    little = meter.end_trial()
    assert big >= 200 * MIB
    assert little < 100 * MIB


def test_mps_meter_reads_driver_memory_against_the_recommended_maximum(monkeypatch):
    readings = {"driver": 6 * 1024 * MIB}
    monkeypatch.setattr(memory_mod, "memory_in_use",
                        lambda device: readings["driver"] if device.type == "mps" else None)
    monkeypatch.setattr(memory_mod, "memory_budget",
                        lambda device: 12 * 1024 * MIB if device.type == "mps" else None)
    meter = meter_for(torch.device("mps"))
    assert meter.budget_bytes() == 12 * 1024 * MIB
    meter.start()
    meter.begin_trial()
    readings["driver"] = 11 * 1024 * MIB
    meter.sample()
    # Absolute: everything the driver holds counts against the recommended maximum.
    assert meter.end_trial() == 11 * 1024 * MIB


def test_cuda_meter_reports_the_allocator_peak(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 5 * 1024 * MIB)
    monkeypatch.setattr(memory_mod, "memory_budget", lambda device: 80 * 1024 * MIB)
    meter = meter_for(torch.device("cuda"))
    assert isinstance(meter, CudaMeter)
    assert meter.budget_bytes() == 80 * 1024 * MIB
    meter.start()
    meter.begin_trial()
    meter.sample()
    assert meter.end_trial() == 5 * 1024 * MIB
    assert calls == ["reset"]


def test_meter_without_readings_reports_no_peak():
    meter = SampledMeter(lambda: None, lambda: None)
    meter.start()
    meter.begin_trial()
    meter.sample()
    assert meter.end_trial() is None
