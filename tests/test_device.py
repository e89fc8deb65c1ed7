"""Device selection and out-of-memory recognition, with the MPS and CUDA queries faked."""

import pytest
import torch

from fintrain.errors import DeviceError
from fintrain import device as dev

MPS_OOM = (
    "MPS backend out of memory (MPS allocated: 17.80 GB, other allocations: 1.20 GB, max allowed: "
    "18.13 GB). Tried to allocate 512.00 MB on private pool. Use PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 "
    "to disable upper limit for memory allocations (may cause system failure)."
)


def test_auto_prefers_mps_then_cuda_then_cpu(monkeypatch):
    monkeypatch.setattr(dev, "mps_available", lambda: True)
    monkeypatch.setattr(dev, "cuda_available", lambda: True)
    assert dev.resolve_device("auto").type == "mps"
    monkeypatch.setattr(dev, "mps_available", lambda: False)
    assert dev.resolve_device("auto").type == "cuda"
    monkeypatch.setattr(dev, "cuda_available", lambda: False)
    assert dev.resolve_device("auto").type == "cpu"


def test_unavailable_device_says_why(monkeypatch):
    monkeypatch.setattr(dev, "mps_available", lambda: False)
    monkeypatch.setattr(dev, "cuda_available", lambda: False)
    with pytest.raises(DeviceError, match="--device mps is not available"):
        dev.resolve_device("mps")
    with pytest.raises(DeviceError, match="--device cuda is not available"):
        dev.resolve_device("cuda")


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError(MPS_OOM),
        # One allocation past Metal's maximum buffer length (the MPS allocator's own check).
        RuntimeError("Invalid buffer size: 34.00 GB"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 1099511627776 bytes."),
        RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a non-contiguous input."),
        MemoryError(),
    ],
)
def test_oom_recognised_on_every_backend(exc):
    assert dev.is_oom(exc)


@pytest.mark.parametrize("exc", [RuntimeError("mat1 and mat2 shapes cannot be multiplied"), ValueError("out of memory")])
def test_other_errors_are_not_oom(exc):
    assert not dev.is_oom(exc)


def test_mps_memory_calls_only_when_available(monkeypatch):
    calls = []

    class FakeMPS:
        def driver_allocated_memory(self):
            calls.append("driver")
            return 123

        def recommended_max_memory(self):
            return 1000

        def empty_cache(self):
            calls.append("empty")

    monkeypatch.setattr(torch, "mps", FakeMPS())
    monkeypatch.setattr(dev, "mps_available", lambda: True)
    mps = torch.device("mps")
    assert dev.memory_in_use(mps) == 123
    assert dev.memory_budget(mps) == 1000
    dev.free_memory(mps)
    assert calls == ["driver", "empty"]
    monkeypatch.setattr(dev, "mps_available", lambda: False)
    assert dev.memory_in_use(mps) is None
