"""The probe's real training step on a tiny PatchTST on CPU, with a small in-memory window set."""

from __future__ import annotations

import torch

from fintrain.config import ProbeConfig, TrainConfig
from fintrain.model import PatchTST, budget_config
from fintrain.probe import meter_for, search_batch_size, training_step_factory

CPU = torch.device("cpu")


class Windows:
    """A WindowSet over random data: (n, L, C) windows and binary labels."""

    def __init__(self, n: int = 200, context_len: int = 16, n_channels: int = 3):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, context_len, n_channels, generator=gen)
        self.y = (torch.rand(n, generator=gen) > 0.5).float()
        self.gathered: list[int] = []

    def __len__(self) -> int:
        return len(self.y)

    def batch_indices(self, batch_size, shuffle, seed, epoch):
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed + epoch))
        return list(order.split(batch_size))

    def gather(self, idx):
        self.gathered.append(len(idx))
        return self.x[idx], self.y[idx]


def tiny_model():
    return budget_config("2m", n_channels=3, context_len=16, d_model=16, n_heads=2, n_layers=1,
                         d_ff=32)


def test_each_trial_trains_a_fresh_model_on_full_batches():
    built = []

    def build(cfg, seed, device):
        torch.manual_seed(seed)
        model = PatchTST(cfg).to(device)
        built.append((model, [p.detach().clone() for p in model.parameters()]))
        return model

    windows = Windows()
    make_step = training_step_factory(tiny_model(), TrainConfig(), "threshold", windows, CPU, build)
    result = search_batch_size(make_step, meter_for(CPU), ProbeConfig(min_batch=8, max_batch=32, steps=2),
                               device="cpu", n_train=len(windows))
    assert [t.status for t in result.trials] == ["ok", "ok", "ok"]
    assert all(t.samples_per_s > 0 and t.peak_memory_bytes is not None for t in result.trials)
    assert result.recommended in (8, 16, 32) and result.largest_fit == 32
    # One model per trial and per re-timing visit (all three sizes are finalists), each trained
    # (its weights moved) on batches of its size.
    assert len({id(m) for m, _ in built}) == 3 + 2 * 3
    for model, initial in built:
        assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), initial))
    # The search: a warm-up and 2 steps per size; each re-timing visit: a warm-up and 1 step.
    visits = [8] * 2 + [16] * 2 + [32] * 2
    assert windows.gathered == [8] * 3 + [16] * 3 + [32] * 3 + visits + visits[::-1]
    assert {f.batch_size for f in result.retiming.finalists} == {8, 16, 32}


def test_the_whole_training_set_is_the_largest_batch():
    windows = Windows(n=40)
    make_step = training_step_factory(tiny_model(), TrainConfig(), "return", windows, CPU,
                                      lambda cfg, seed, device: PatchTST(cfg))
    result = search_batch_size(make_step, meter_for(CPU), ProbeConfig(min_batch=16, steps=1),
                               device="cpu", n_train=len(windows))
    assert [t.batch_size for t in result.trials] == [16, 32, 40]
