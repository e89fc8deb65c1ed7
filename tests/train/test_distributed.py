"""Several processes: batch sharding, and two gloo ranks matching one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fintrain.train.distributed import Decision, Distributed

RUN, PAUSE, INTERRUPT = Decision.RUN, Decision.PAUSE, Decision.INTERRUPT


def test_global_batch_is_split_in_rank_order():
    idx = torch.arange(32)
    parts = [Distributed(rank=r, world_size=2).shard(idx) for r in range(2)]
    assert [len(p) for p in parts] == [16, 16]
    assert torch.equal(torch.cat(parts), idx)
    assert torch.equal(Distributed().shard(idx), idx)


def test_single_process_agreement_is_local():
    d = Distributed()
    assert d.agree(False, RUN) == (RUN, False) and d.agree(False, PAUSE) == (PAUSE, False)
    assert d.agree(True, PAUSE) == (INTERRUPT, False)
    assert d.agree(False, RUN, log_due=True) == (RUN, True)
    assert Distributed(rank=1, world_size=1).agree(False, PAUSE) == (RUN, False)  # only rank 0 decides heat
    assert Distributed(rank=1, world_size=1).agree(True, RUN) == (INTERRUPT, False)  # any rank's Ctrl-C counts
    assert Distributed(rank=1, world_size=1).agree(False, RUN, log_due=True) == (RUN, False)  # rank 0's clock


def _train_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["train/loss"] for r in map(json.loads, lines) if r["kind"] == "train"]


@pytest.mark.slow
def test_two_gloo_ranks_follow_one_process(tmp_path, tiny_toml, cli):
    config = tmp_path / "ln.toml"
    # LayerNorm and no dropout: then two ranks with half the batch each equal one process.
    config.write_text(tiny_toml(model={"dropout": 0.0, "head_dropout": 0.0, "norm": "layer"},
                                train={"max_steps": 6, "batch_size": 32, "log_every": 1}))
    env = {**os.environ, "FINTRAIN_DATA_DIR": str(tmp_path / "data"), "FINTRAIN_RUNS_DIR": str(tmp_path / "runs")}
    base = [sys.executable, "-m", "fintrain", "train", "--config", str(config), "--no-live"]
    one = cli("train", "--config", str(config), "--no-live", "--run-name", "one")  # in this process: one start less
    assert one.exit_code == 0, one.output
    two = subprocess.run([*base, "--run-name", "two", "--nproc", "2"], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one_losses, two_losses = _train_losses(tmp_path / "runs" / "one"), _train_losses(tmp_path / "runs" / "two")
    assert len(one_losses) == len(two_losses) == 6
    assert two_losses == pytest.approx(one_losses, rel=1e-4)
    # Only rank 0 wrote the run folder, and it finished like the single process.
    summary = json.loads((tmp_path / "runs" / "two" / "summary.json").read_text())
    assert summary["steps"] == 6
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["one", "two"]


WORKER = Path(__file__).with_name("ddp_fit_worker.py")


@pytest.mark.slow
def test_two_ranks_with_dropout_resume_bitwise(tmp_path):
    """Each rank draws its own dropout masks, a Ctrl-C on rank 1 stops every rank at the same
    step, and a resumed run draws the masks as if never stopped (one torchrun launch for all)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(WORKER), str(tmp_path)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = [json.loads((tmp_path / f"outcomes-{rank}.json").read_text()) for rank in (0, 1)]
    assert outcomes == [{"full": "finished", "cut": "stopped 130", "resumed": "finished"}] * 2
    checkpoint = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert checkpoint["step"] == 11
    cpu_states = [r["cpu"] for r in checkpoint["rng_ranks"]]
    assert len(cpu_states) == 2 and not torch.equal(cpu_states[0], cpu_states[1])
    full, cut, resumed = (torch.load(tmp_path / f"{name}.pt", weights_only=True) for name in ("full", "cut", "resumed"))
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert not all(torch.equal(full[k], cut[k]) for k in full)  # the cut run really stopped early


def test_a_rank_that_joined_a_group_ends_without_the_interpreters_teardown(monkeypatch):
    """fintrain's entry point ends a torchrun rank with os._exit (gloo's threads abort in the
    C++ teardown now and then); any other process exits as usual."""
    import fintrain.cli as cli
    import fintrain.train.distributed as distributed

    ended: list[int] = []
    monkeypatch.setattr(distributed.os, "_exit", ended.append)
    with pytest.raises(SystemExit) as plain:
        cli._exit(3)
    assert plain.value.code == 3 and ended == []
    monkeypatch.setattr(distributed, "_JOINED", True)
    for code, expected in ((3, 3), (None, 0), (0, 0)):
        with pytest.raises(SystemExit):  # the patched os._exit returns, so sys.exit follows
            cli._exit(code)
        assert ended[-1] == expected
    assert ended == [3, 0, 0]
