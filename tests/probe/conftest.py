"""Fakes for the probe's seams: a device that runs out of memory above a size, its memory
reading and a clock that advances by a scripted step time."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fintrain.config import ProbeConfig

# The messages as each backend raises them (MPS and the CPU allocator: plain RuntimeError).
MPS_OOM = (
    "MPS backend out of memory (MPS allocated: 17.52 GB, other allocations: 1.20 GB, max allowed: "
    "18.13 GB). Tried to allocate 512.00 MB on private pool. Use "
    "PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 to disable upper limit for memory allocations (may "
    "cause system failure)."
)
CUDA_OOM = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB of "
    "which 1.02 GiB is free. Of the allocated memory 76.10 GiB is allocated by PyTorch"
)
CPU_OOM = (
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
    "tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"
)
MIB = 1024**2


class FakeClock:
    """Monotonic seconds that only move when a fake step says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeDevice:
    """Builds steps that cost ``seconds(B)`` on the clock and use ``base + B * per_sample``
    bytes while they run, and raise ``error(B)`` when the batch is too large.

    The default step time, 0.5 s + 10 ms a sample, is a GPU's: samples/s rises with every
    doubling, by more than the probe's plateau margin up to 512 (it flattens past 1,024).

    Attributes:
        built: batch sizes a step was built for, in order (one per trial = fresh model).
        calls: steps run per batch size (warm-up included).
    """

    def __init__(
        self,
        clock: FakeClock,
        *,
        fails_above: int | None = None,
        error: Callable[[int], BaseException] | None = None,
        seconds: Callable[[int], float] = lambda b: 0.5 + 0.01 * b,
        base_bytes: int = 100 * MIB,
        bytes_per_sample: int = 1 * MIB,
        fail_on_build: bool = False,
    ) -> None:
        self.clock = clock
        self.fails_above = fails_above
        self.error = error or (lambda b: RuntimeError(MPS_OOM))
        self.seconds = seconds
        self.base_bytes = base_bytes
        self.bytes_per_sample = bytes_per_sample
        self.fail_on_build = fail_on_build
        self.in_use = base_bytes
        self.built: list[int] = []
        self.calls: dict[int, int] = {}
        self.released = 0

    def read_memory(self) -> int:
        return self.in_use

    def release(self) -> None:
        """What free_memory does: the trial's tensors and cached blocks go back."""
        self.released += 1
        self.in_use = self.base_bytes

    def make_step(self, batch_size: int) -> Callable[[], None]:
        self.built.append(batch_size)
        too_big = self.fails_above is not None and batch_size > self.fails_above
        if too_big and self.fail_on_build:
            raise self.error(batch_size)

        def step() -> None:
            self.calls[batch_size] = self.calls.get(batch_size, 0) + 1
            if too_big:
                raise self.error(batch_size)
            self.in_use = self.base_bytes + batch_size * self.bytes_per_sample
            self.clock.now += self.seconds(batch_size)

        return step


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_device(clock: FakeClock) -> Callable[..., FakeDevice]:
    """``fake_device(fails_above=256, error=..., seconds=...)`` on the test's clock."""
    return lambda **kw: FakeDevice(clock, **kw)


@pytest.fixture
def oom_errors() -> dict[str, Callable[[], BaseException]]:
    """Out-of-memory errors as each backend raises them."""
    import torch

    return {
        "mps": lambda: RuntimeError(MPS_OOM),
        # One allocation past Metal's maximum buffer length: the MPS allocator's size check.
        "mps-buffer-size": lambda: RuntimeError("Invalid buffer size: 34.00 GB"),
        "cuda": lambda: torch.OutOfMemoryError(CUDA_OOM),
        "cuda-runtime-error": lambda: RuntimeError(CUDA_OOM),
        "cudnn": lambda: RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear "
                                      "if you passed in a non-contiguous input."),
        "cpu": lambda: RuntimeError(CPU_OOM),
        "cpu-memoryerror": lambda: MemoryError(),
    }


@pytest.fixture
def probe_cfg() -> Callable[..., ProbeConfig]:
    def make(**kw) -> ProbeConfig:
        return ProbeConfig.model_validate({"min_batch": 8, "max_batch": 4096, **kw})

    return make
