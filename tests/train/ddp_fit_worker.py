"""Two ranks of a tiny DDP training run, for tests/train/test_distributed.py (run under torchrun).

    python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_fit_worker.py FOLDER

One launch runs three trainings in turn, each from the same freshly seeded model as a new
process would build: ``full`` (train to the end), ``cut`` (rank 1, not rank 0, gets a Ctrl-C
after step 11, so every rank must stop there and rank 0 saves ``FOLDER/cut/last.pt``) and
``resumed`` (continue from that ``last.pt``, checkpointing to ``FOLDER/resumed``). Rank 0
writes each one's final weights to ``FOLDER/NAME.pt``; each rank writes how each ended to
``FOLDER/outcomes-RANK.json``.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import polars as pl
import torch
from torch import nn

from fintrain.config import TrainConfig
from fintrain.dataset import WindowSet
from fintrain.records import TrainRecord
from fintrain.train.checkpoint import load_checkpoint
from fintrain.train.distributed import exit_rank, from_environment, shutdown
from fintrain.train.loop import Checkpointer, FitData, TrainingStopped, fit

STOP_AT = 11


class CtrlCAt:
    """A sink that sends this process a Ctrl-C at the train record of ``step`` (or never)."""

    def __init__(self, step: int | None):
        self.step = step

    def log(self, record, step):
        if isinstance(record, TrainRecord) and step == self.step:
            signal.raise_signal(signal.SIGINT)

    def close(self):
        pass


class DropoutNet(nn.Module):
    """Dropout makes the result depend on each rank's RNG stream."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 16)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, 1)

    def forward(self, x):  # (B, L, C) -> (B, 1)
        return self.out(self.drop(torch.relu(self.hidden(x[:, -1]))))


def split(n: int, seed: int) -> WindowSet:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n + 7, 3, generator=generator)
    labels = (torch.rand(n + 7, generator=generator) > 0.5).float()
    return WindowSet(features, labels, torch.arange(7, n + 7), context_len=8, dates=pl.Series(range(n)))


def train(name: str, folder: Path, dist, resume: dict | None = None, ctrl_c_rank: int | None = None) -> str:
    """One training from a freshly seeded model; how it ended."""
    torch.manual_seed(0)  # identical initial weights on every rank, as build_model does
    model = DropoutNet()
    # log_every=1: a train record after every step, where a rank's sink can press Ctrl-C.
    cfg = TrainConfig(epochs=3, log_every=1, warmup_steps=0, checkpoint_every=1000, lr=1e-2, batch_size=8)
    sink = CtrlCAt(STOP_AT if dist.rank == ctrl_c_rank else None)
    try:
        fit(model, FitData(split(64, 1), split(32, 2), "direction"), cfg, sink, Checkpointer(folder / name, {}),
            resume=resume, dist=dist)
        outcome = "finished"
    except TrainingStopped as stopped:
        outcome = f"stopped {stopped.exit_code}"
    if dist.is_main:
        torch.save(model.state_dict(), folder / f"{name}.pt")
    dist.barrier()  # last.pt and the weights are on disk before any rank goes on
    return outcome


def main() -> None:
    folder = Path(sys.argv[1])
    torch.set_num_threads(1)
    dist = from_environment()
    try:
        outcomes = {"full": train("full", folder, dist), "cut": train("cut", folder, dist, ctrl_c_rank=1)}
        outcomes["resumed"] = train("resumed", folder, dist, resume=load_checkpoint(folder / "cut" / "last.pt"))
        (folder / f"outcomes-{dist.rank}.json").write_text(json.dumps(outcomes))
    finally:
        shutdown(dist)
    exit_rank(0)  # as `fintrain train` under torchrun ends: without gloo's teardown


if __name__ == "__main__":
    main()
