"""The ``nvidia`` source: GPU temperatures through NVML (``pip install 'fintrain[nvidia]'``).

Each GPU is one sensor; the deciding value is the hottest GPU, since every GPU is a separate
device and the one that overheats is the one that matters (averaging would hide it).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from fintrain.errors import ThermalError
from fintrain.thermal.reading import FROZEN_WHOLE_DEGREES_S, Reading, ValueFilter, build_reading


# For either install route: pipx keeps fintrain in its own environment, where only inject adds.
NVML_INSTALL = "`pipx inject fintrain nvidia-ml-py` (pipx install) or `pip install 'fintrain[nvidia]'` (pip, venv)"


def load_nvml() -> ModuleType:
    """The ``pynvml`` module of nvidia-ml-py; a ThermalError saying how to install it if absent."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        raise ThermalError(
            f"the nvidia source needs the NVML bindings (nvidia-ml-py): {NVML_INSTALL}"
        ) from None


class NvidiaSensor:
    """GPU temperatures from NVML.

    Args:
        nvml: the ``pynvml`` module (tests pass a fake one).
        clock: monotonic clock for the timestamps.
    """

    def __init__(self, nvml: ModuleType | Any, clock: Callable[[], float] = time.monotonic):
        self._nvml = nvml
        self._clock = clock
        self._filter = ValueFilter(frozen_s=FROZEN_WHOLE_DEGREES_S)
        self.name = "nvidia"
        self.problem: str | None = None
        nvml.nvmlInit()
        try:
            self._handles = []
            for i in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                label = nvml.nvmlDeviceGetName(handle)
                if isinstance(label, bytes):
                    label = label.decode("utf-8", "replace")
                self._handles.append((f"GPU{i} {label}", handle))
        except Exception:
            nvml.nvmlShutdown()
            raise
        if not self._handles:
            nvml.nvmlShutdown()
            raise RuntimeError("NVML sees no GPU")

    @classmethod
    def open(cls, clock: Callable[[], float] = time.monotonic) -> NvidiaSensor:
        """Initialise NVML; raises ThermalError without bindings, other errors without a GPU."""
        return cls(load_nvml(), clock)

    @property
    def dropped(self) -> int:
        """Faulty values thrown away so far."""
        return self._filter.dropped

    def read(self) -> Reading | None:
        """Each GPU's temperature; a GPU that fails to answer is left out of this sample."""
        nvml = self._nvml
        values: dict[str, float] = {}
        errors = []
        for name, handle in self._handles:
            try:
                values[name] = float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
            except Exception as exc:  # NVMLError subclasses differ by driver version
                errors.append(f"{name}: {exc}")
        if not values:
            self.problem = "NVML gave no temperature: " + "; ".join(errors)
            return None
        reading = build_reading(self._clock(), values, self._filter, combine=max)
        self.problem = None if reading.has_temperature else "; ".join(reading.dropped)
        return reading

    def close(self) -> None:
        """Shut NVML down."""
        if self._handles:
            self._handles = []
            self._nvml.nvmlShutdown()
