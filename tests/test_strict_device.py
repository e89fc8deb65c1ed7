"""The strict-device mode itself: it must refuse what MPS refuses, and nothing more."""

from __future__ import annotations

import pytest
import torch

from fintrain.device import resolve_device
from fintrain.train import run as run_lib


def test_float64_from_a_device_tensor_raises_as_on_mps(strict_device):
    with strict_device() as mode:
        x = torch.ones(4, 3).to(torch.device("cpu", 0))
        assert mode.is_device(x) and mode.is_device(x[1:] * 2)
        with pytest.raises(TypeError, match="float64"):
            x.to("cpu", torch.float64)  # cast and copy in one call
        with pytest.raises(TypeError, match="float64"):
            x.double()
        with pytest.raises(TypeError, match="float64"):
            x.sum(dtype=torch.float64)
        with pytest.raises(TypeError, match="numpy"):
            x.numpy()
        assert len(mode.refused) == 4


def test_copy_first_then_cast_passes_and_host_tensors_are_free(strict_device):
    with strict_device() as mode:
        host = torch.arange(6.0)
        x = host.to(torch.device("cpu", 0))
        assert not mode.is_device(host)  # what was moved from stays on the host
        on_host = x.cpu()
        assert not mode.is_device(on_host) and mode.is_device(x)
        assert on_host.double().sum().item() == 15.0
        assert x.detach().to("cpu").double().numpy().tolist() == [0, 1, 2, 3, 4, 5]
        assert host.double().numpy().sum() == 15.0
        made = torch.zeros(2, device=torch.device("cpu", 0))
        assert mode.is_device(made)
        with pytest.raises(TypeError, match="float64"):
            torch.zeros(2, dtype=torch.float64, device=torch.device("cpu", 0))
        assert mode.refused and not any("numpy" in r for r in mode.refused)


def test_model_outputs_on_device_inputs_are_device_tensors(strict_device):
    with strict_device() as mode:
        model = torch.nn.Linear(3, 1).to(torch.device("cpu", 0))
        out = model(torch.randn(5, 3).to(torch.device("cpu", 0)))
        assert mode.is_device(out)
        with pytest.raises(TypeError):
            out.detach().numpy()


def test_the_library_resolves_cpu_to_the_strict_device_only_inside(strict_device):
    with strict_device():
        assert run_lib.resolve_device("cpu") == torch.device("cpu", 0)
    assert resolve_device("cpu") == torch.device("cpu")
    assert run_lib.resolve_device("cpu") == torch.device("cpu")
