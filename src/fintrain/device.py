"""Devices: choosing one, out-of-memory recognition, memory readings, synchronisation.

Every MPS and CUDA call sits behind an availability check, so this module imports and runs on
any machine; tests replace the queries with fakes to exercise the MPS branches.
"""

from __future__ import annotations

import gc
import os
from typing import Literal

import psutil
import torch

from fintrain.errors import DeviceUnavailableError

DeviceName = Literal["auto", "mps", "cuda", "cpu"]

# Texts of out-of-memory errors that arrive as a plain RuntimeError (REFERENCE.md): MPS raises
# "MPS backend out of memory (...)", and "Invalid buffer size: ..." for one allocation larger
# than Metal's maximum buffer length; the CPU allocator "DefaultCPUAllocator: can't allocate
# memory", and cuDNN reports exhausted workspace as CUDNN_STATUS_NOT_SUPPORTED.
OOM_MARKERS = (
    "out of memory",
    "invalid buffer size",
    "defaultcpuallocator: can't allocate memory",
    "cudnn_status_not_supported",
)


def mps_available() -> bool:
    """True when PyTorch can use Apple's Metal backend here."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cuda_available() -> bool:
    """True when a CUDA device is usable."""
    return torch.cuda.is_available()


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train on: ``auto`` prefers mps, then cuda, then cpu.

    Raises:
        DeviceUnavailableError: the requested device does not exist on this machine, with the reason.
    """
    if name == "auto":
        if mps_available():
            return torch.device("mps")
        if cuda_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if name == "mps" and not mps_available():
        backend = getattr(torch.backends, "mps", None)
        built = bool(backend is not None and backend.is_built())
        why = (
            "this PyTorch was built with MPS but no Metal device is available (macOS 12.3+ on "
            "Apple silicon is needed)"
            if built
            else "this PyTorch build has no MPS support (MPS exists only on Apple-silicon Macs)"
        )
        raise DeviceUnavailableError(f"--device mps is not available: {why}; use --device auto or cpu")
    if name == "cuda" and not cuda_available():
        why = (
            "this PyTorch is a CPU-only build"
            if torch.version.cuda is None
            else "no NVIDIA GPU or driver was found"
        )
        raise DeviceUnavailableError(f"--device cuda is not available: {why}; use --device auto or cpu")
    if name not in ("mps", "cuda", "cpu"):
        raise DeviceUnavailableError(f"unknown device {name!r}; use auto, mps, cuda or cpu")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """A readable name: ``cuda (NVIDIA H200)``, ``mps``, ``cpu (8 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error from any backend (typed or a RuntimeError's text)."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(marker in text for marker in OOM_MARKERS)
    return False


def free_memory(device: torch.device) -> None:
    """Give cached memory back; call it after leaving the ``except`` block of an OOM."""
    gc.collect()
    if device.type == "cuda" and cuda_available():
        torch.cuda.empty_cache()
    elif device.type == "mps" and mps_available():
        torch.mps.empty_cache()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (for honest timings)."""
    if device.type == "cuda" and cuda_available():
        torch.cuda.synchronize(device)
    elif device.type == "mps" and mps_available():
        torch.mps.synchronize()


def process_rss_bytes() -> int:
    """Resident memory of this process."""
    return psutil.Process(os.getpid()).memory_info().rss


def memory_in_use(device: torch.device) -> int | None:
    """Bytes in use on the device: CUDA allocated, MPS driver-allocated, CPU resident."""
    if device.type == "cuda" and cuda_available():
        return torch.cuda.memory_allocated(device)
    if device.type == "mps" and mps_available():
        return torch.mps.driver_allocated_memory()
    if device.type == "cpu":
        return process_rss_bytes()
    return None


def memory_budget(device: torch.device) -> int | None:
    """The memory a device offers: CUDA total, MPS recommended maximum, CPU available."""
    if device.type == "cuda" and cuda_available():
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "mps" and mps_available():
        return torch.mps.recommended_max_memory()
    if device.type == "cpu":
        return psutil.virtual_memory().available
    return None


def manual_seed_all(seed: int) -> None:
    """Seed torch on every backend that is present."""
    torch.manual_seed(seed)
    if cuda_available():
        torch.cuda.manual_seed_all(seed)
    if mps_available():
        torch.mps.manual_seed(seed)


def rng_state() -> dict[str, object]:
    """RNG states as tensors, so ``torch.load(weights_only=True)`` can read them."""
    state: dict[str, object] = {"cpu": torch.get_rng_state()}
    if cuda_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if mps_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict[str, object]) -> None:
    """Restore what ``rng_state`` saved (backends absent now are skipped)."""
    torch.set_rng_state(state["cpu"])  # type: ignore[arg-type]
    if "cuda" in state and cuda_available():
        torch.cuda.set_rng_state_all(state["cuda"])  # type: ignore[arg-type]
    if "mps" in state and mps_available():
        torch.mps.set_rng_state(state["mps"])  # type: ignore[arg-type]
