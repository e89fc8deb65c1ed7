"""A strict-device mode: MPS's host/device rules, enforced on a CPU-only machine.

No Mac runs CI, so the mistakes that only MPS punishes (a float64 tensor made from a device
tensor, ``.numpy()`` on a device tensor) would otherwise land unseen. This mode stands in:

- ``STRICT_DEVICE`` (``cpu:0``) plays the accelerator. A tensor moved or created there with an
  explicit ``cpu:0`` (``.to(device)``, ``torch.zeros(..., device=device)``, ``model.to(device)``)
  is a *device tensor*, and so is every tensor an operation makes from one.
- ``.cpu()`` and ``.to("cpu")`` (a device without an index) are the copy to the host: what they
  return is a host tensor again.
- Inside the mode, an operation that takes a device tensor and gives a float64 (or complex128)
  tensor raises ``TypeError``, as MPS does ("Cannot convert a MPS Tensor to float64 ..."),
  and so does ``.numpy()`` on a device tensor. ``t.to("cpu", torch.float64)`` raises because it
  casts and copies in one call; ``t.cpu().double()`` copies first and passes.

The bookkeeping is a ``TorchFunctionMode`` with a weak table of device tensors: no tensor
subclass, so checkpoints and ``isinstance`` checks see plain tensors.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakTensorKeyDictionary

import fintrain.device

STRICT_DEVICE = torch.device("cpu", 0)
NO_FLOAT64 = (torch.float64, torch.complex128)


def _target_device(func, args, kwargs) -> torch.device | None:
    """The device a call moves or creates its result on, when it names one."""
    if func is torch.Tensor.cpu:
        return torch.device("cpu")
    if func is torch.Tensor.to:
        rest = args[1:]
        if rest and isinstance(rest[0], torch.Tensor):
            return None  # .to(other): takes other's device, whose marking travels with it
        device = torch._C._nn._parse_to(*rest, **kwargs)[0]
        return device
    device = kwargs.get("device")
    return None if device is None else torch.device(device)


class StrictDeviceMode(TorchFunctionMode):
    """Tracks device tensors and raises where MPS would (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.on_device = WeakTensorKeyDictionary()
        self.refused: list[str] = []
        self.marked = 0  # tensors ever made device tensors (the table forgets freed ones)

    def mark(self, tensor: torch.Tensor) -> torch.Tensor:
        """Treat ``tensor`` as living on the device."""
        self.on_device[tensor] = True
        self.marked += 1
        return tensor

    def is_device(self, tensor: torch.Tensor) -> bool:
        """True for a device tensor."""
        return tensor in self.on_device

    def _refuse(self, message: str) -> None:
        self.refused.append(message)
        raise TypeError(f"strict device: {message}")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        from_device = any(t in self.on_device for t in inputs)
        name = getattr(func, "__qualname__", getattr(func, "__name__", repr(func)))
        if func is torch.Tensor.numpy and from_device:
            self._refuse(
                "can't convert a device tensor to numpy (MPS: 'can't convert mps:0 device type "
                "tensor to numpy'); copy it to the host with .cpu() first"
            )
        target = _target_device(func, args, kwargs)
        result = func(*args, **kwargs)
        to_device = from_device if target is None else target == STRICT_DEVICE
        if target is not None and to_device != from_device and args and result is args[0]:
            # On the CPU a move is a no-op that returns the same object; a real move makes a
            # new tensor, and the one left behind keeps its place.
            result = result.view_as(result)
        outputs = [t for t in tree_leaves(result) if isinstance(t, torch.Tensor)]
        if (from_device or to_device) and any(t.dtype in NO_FLOAT64 for t in outputs):
            self._refuse(
                f"{name} made a float64 tensor from a device tensor; MPS raises 'Cannot convert a "
                "MPS Tensor to float64 dtype' (torch <= 2.13) or returns zeros (2.14): copy to the "
                "host first, then cast (.cpu().double())"
            )
        if to_device:
            for t in outputs:
                self.mark(t)
        return result


@contextmanager
def strict_device() -> Iterator[StrictDeviceMode]:
    """Enter the mode, with every ``resolve_device("cpu")`` of the library giving ``cpu:0``.

    ``resolve_device`` is replaced wherever a module imported it by name, so a run configured
    with ``device = "cpu"`` trains on the strict device without any change to its config.
    """
    original = fintrain.device.resolve_device

    def resolve(name: str = "auto") -> torch.device:
        device = original(name)
        return STRICT_DEVICE if device.type == "cpu" else device

    patched = [m for m in list(sys.modules.values())
               if getattr(m, "__name__", "").startswith("fintrain")
               and getattr(m, "resolve_device", None) is original]
    for module in patched:
        module.resolve_device = resolve
    try:
        with StrictDeviceMode() as mode:
            yield mode
    finally:
        for module in patched:
            module.resolve_device = original
