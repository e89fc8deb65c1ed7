"""Several processes under ``torchrun``: DistributedDataParallel, one rank writing.

``torchrun --nproc-per-node N -m fintrain train ...`` (or ``fintrain train --nproc N``) starts N
ranks. Each global batch is split between the ranks, gradients are averaged by DDP, the ranks
agree once per step on whether to go on, pause or stop, and only rank 0 writes files.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel


class Decision(IntEnum):
    """What a step's agreement can say, in rising priority (ranks take the maximum)."""

    RUN = 0
    PAUSE = 1
    STOP = 2  # a thermal critical: save last.pt and exit 3
    INTERRUPT = 3  # Ctrl-C: save last.pt and exit 130


@dataclass
class Distributed:
    """This process's place among the ranks; a single process is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True with more than one rank."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files, TensorBoard, checkpoints and the panel."""
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch: contiguous, near-equal chunks in rank order."""
        if not self.enabled:
            return idx
        return idx.tensor_split(self.world_size)[self.rank]

    def sum(self, *values: torch.Tensor) -> list[torch.Tensor]:
        """Sum scalar tensors over the ranks (one collective for all of them)."""
        if not self.enabled:
            return list(values)
        stacked = torch.stack([v.detach().float() for v in values]).to(self._comm_device())
        torch_dist.all_reduce(stacked, op=torch_dist.ReduceOp.SUM)
        return list(stacked.to(values[0].device).unbind())

    def agree(self, interrupt: bool, thermal: Decision, log_due: bool = False) -> tuple[Decision, bool]:
        """The step's decision (any rank's Ctrl-C wins, then rank 0's thermal action) and rank 0's
        word on whether the step logs by time (its clock decides, so every rank logs alike).

        One collective carries both: the decision in the high bits, the flag in the lowest.
        """
        local = Decision.INTERRUPT if interrupt else (thermal if self.is_main else Decision.RUN)
        flag = bool(log_due and self.is_main)
        if not self.enabled:
            return local, flag
        code = torch.tensor([(int(local) << 1) | int(flag)], dtype=torch.int64, device=self._comm_device())
        torch_dist.all_reduce(code, op=torch_dist.ReduceOp.MAX)
        value = int(code.item())
        return Decision(value >> 1), bool(value & 1)

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's picklable object, in rank order, on every rank.

        All ranks receive, not only rank 0: with a one-way gather a rank could leave the
        process group while its send was still in flight, and gloo aborts such a process.
        """
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's value of a picklable object, on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written a checkpoint)."""
        if self.enabled:
            torch_dist.barrier()

    def _comm_device(self) -> torch.device:
        if torch_dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


# Set once this process has joined a process group (see exit_rank).
_JOINED = False


def from_environment() -> Distributed:
    """Join the process group that torchrun describes in the environment, if any.

    NCCL when CUDA is available, gloo otherwise.
    """
    global _JOINED
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch_dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        torch_dist.init_process_group(backend=backend, timeout=dt.timedelta(minutes=30))
    _JOINED = True
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank)


def exit_rank(code: int) -> None:
    """End this process now, with ``code``, when it joined a process group; else return.

    The interpreter's own exit destroys gloo's worker threads during C++ teardown, and now and
    then one is still joinable: "terminate called without an active exception", SIGABRT, and
    torchrun reports a failed rank for a run that finished (about once in 25 launches of the
    two-rank test, even after ``shutdown``'s barrier). Once the group is destroyed and the
    output flushed, nothing is left for that teardown to do, so the process ends here without
    it (``os._exit``). Files are closed by then: the run's sinks close when ``fit`` returns.
    """
    if not _JOINED:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def shutdown(dist: Distributed, *, clean: bool = True) -> None:
    """Leave the process group.

    After a clean finish every rank first waits at a barrier: rank 0 still evaluates and writes
    the summary after the last collective, and a rank that tore down gloo and exited meanwhile
    sometimes aborted in its teardown ("terminate called without an active exception", SIGABRT;
    seen about once in fifteen CI runs). After an error a rank leaves at once, since the others
    may never reach a barrier; torchrun then ends them.
    """
    if not (dist.enabled and torch_dist.is_initialized()):
        return
    if clean:
        torch_dist.barrier()
    torch_dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, dist: Distributed, device: torch.device) -> torch.nn.Module:
    """DDP around the model; BatchNorm becomes SyncBatchNorm on CUDA.

    BatchNorm normalises with each rank's own batch statistics, so on CPU (gloo, where
    SyncBatchNorm is not supported) a BatchNorm model is not equivalent to one process with the
    whole batch; LayerNorm is.
    """
    if not dist.enabled:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def rank_device(dist: Distributed, device: torch.device) -> torch.device:
    """Each rank takes its own GPU under torchrun."""
    if dist.enabled and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device
