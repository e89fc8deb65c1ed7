"""Checkpoints that say when they are damaged, keep their predecessor, and never hold NaN."""

from __future__ import annotations

import math
import shutil
import struct
import sys

import pytest
import torch
from torch import nn

from fintrain.config import TrainConfig
from fintrain.errors import CheckpointError, FintrainError
from fintrain.records import Event, EventRecord
from fintrain.train.checkpoint import LAST, LAST_PREV, load_checkpoint, save_checkpoint
from fintrain.train.loop import Checkpointer, FitData, fit

MARK = 1.2345  # a weight value whose bytes the tests find in the file


def state(step: int = 3, weight: float = MARK) -> dict:
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.fill_(weight)
    return {"model": model.state_dict(), "state": {"step": step}, "step": step, "rng": torch.ByteTensor([1, 2, 3])}


def flip_exponent_bit(path) -> None:
    """Flip one exponent bit of the first weight equal to MARK, leaving the file loadable."""
    data = bytearray(path.read_bytes())
    at = data.index(struct.pack("<f", MARK))
    data[at + 3] ^= 0x40  # bit 30: the exponent's top bit (1.2345 -> ~4e38)
    path.write_bytes(bytes(data))


def test_a_checkpoint_round_trips_with_its_checksum(tmp_path):
    save_checkpoint(tmp_path / LAST, state())
    loaded = load_checkpoint(tmp_path / LAST)
    assert loaded["step"] == 3 and "checksum" not in loaded
    assert torch.equal(loaded["model"]["weight"], torch.full((2, 4), MARK))


def test_a_flipped_exponent_bit_is_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / LAST
    save_checkpoint(path, state())
    flip_exponent_bit(path)
    torch.load(path, weights_only=True)  # torch itself reads the damaged file without a word
    with pytest.raises(CheckpointError, match="does not match its checksum") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_bytes(b"\x00garbage" * 100), "is corrupt or not a fintrain checkpoint"),
        (lambda p: torch.save({"weights": torch.ones(3)}, p), "is not a fintrain checkpoint"),
        (lambda p: torch.save({"model": nn.Linear(2, 2)}, p), "is corrupt or not a fintrain checkpoint"),
    ],
)
def test_foreign_files_are_named_without_torchs_weights_only_advice(tmp_path, write, message):
    path = tmp_path / "other.pt"
    write(path)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert str(path) in text and "weights_only" not in text and "\n" not in text


def test_saving_last_keeps_the_previous_one_as_last_prev(tmp_path):
    save_checkpoint(tmp_path / LAST, state(step=1))
    assert not (tmp_path / LAST_PREV).exists()
    save_checkpoint(tmp_path / LAST, state(step=2))
    save_checkpoint(tmp_path / LAST, state(step=3))
    assert load_checkpoint(tmp_path / LAST)["step"] == 3
    assert load_checkpoint(tmp_path / LAST_PREV)["step"] == 2
    save_checkpoint(tmp_path / "best.pt", state(step=3))
    assert load_checkpoint(tmp_path / LAST_PREV)["step"] == 2


def test_non_finite_weights_are_never_written(tmp_path):
    path = tmp_path / LAST
    save_checkpoint(path, state(step=1))
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="weights are not finite"):
        save_checkpoint(path, state(step=2, weight=math.nan))
    assert path.read_bytes() == before and not (tmp_path / LAST_PREV).exists()


def test_checkpoint_save_killed_at_every_write_step_leaves_last_and_prev_loadable(tmp_path, kill_at_each_step):
    fault_injection = sys.modules["fault_injection"]
    folder, baseline = tmp_path / "checkpoints", tmp_path / "baseline"
    baseline.mkdir()
    fault_injection.save_next_checkpoint(baseline)
    fault_injection.save_next_checkpoint(baseline)  # last.pt at step 1, last.prev.pt at step 0

    def reset():
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(baseline, folder)

    def check(n):
        last, prev = load_checkpoint(folder / LAST)["step"], load_checkpoint(folder / LAST_PREV)["step"]
        assert (last, prev) in ((1, 0), (1, 1), (2, 1)), (n, last, prev)
        assert fault_injection.save_next_checkpoint(folder) == last + 1
        assert load_checkpoint(folder / LAST_PREV)["step"] == last

    # last.prev.pt (created, written, synced, replaced, folder synced, kept) and last.pt's five.
    assert kill_at_each_step(["checkpoint", str(folder)], reset, check) >= 10


class NanWhen(nn.Module):
    """The last row's linear map, whose output is NaN at the training calls listed (1-based)."""

    def __init__(self, nan_calls):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.nan_calls = nan_calls
        self.calls = 0

    def forward(self, x):  # (B, L, C) -> (B, 1)
        out = self.linear(x[:, -1])
        if self.training:
            self.calls += 1
            if self.nan_calls(self.calls):
                out = out * math.nan
        return out


class Events:
    def __init__(self):
        self.records = []

    def log(self, record, step):
        self.records.append(record)

    def close(self):
        pass

    def of(self, event):
        return [r for r in self.records if isinstance(r, EventRecord) and r.event is event]


def tiny_data():
    import polars as pl

    from fintrain.dataset import WindowSet

    def split(n, seed):
        g = torch.Generator().manual_seed(seed)
        return WindowSet(torch.randn(n + 7, 3, generator=g), (torch.rand(n + 7, generator=g) > 0.5).float(),
                         torch.arange(7, n + 7), context_len=8, dates=pl.Series(range(n)))

    return FitData(split(64, 1), split(32, 2), "direction")


def test_non_finite_loss_skips_the_step_and_is_counted(tmp_path):
    torch.manual_seed(0)
    model, sink = NanWhen(lambda call: call in (3, 4, 9)), Events()
    cfg = TrainConfig(epochs=2, warmup_steps=0, batch_size=8, log_every=4)
    result = fit(model, tiny_data(), cfg, sink, Checkpointer(tmp_path, {}))
    assert result.state.step == 16 and result.state.skipped_steps == 3
    skipped = sink.of(Event.NONFINITE)
    assert [r.step for r in skipped] == [2, 3, 8]  # the events name the step being taken (3, 4, 9)
    assert "step 3: optimizer step skipped" in skipped[0].message
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert load_checkpoint(tmp_path / LAST)["state"]["skipped_steps"] == 3
    losses = [r.loss for r in sink.records if type(r).__name__ == "TrainRecord"]
    assert all(loss is None or math.isfinite(loss) for loss in losses)


def test_too_many_non_finite_steps_in_a_row_stop_training_with_finite_checkpoints(tmp_path):
    torch.manual_seed(0)
    model, sink = NanWhen(lambda call: call >= 3), Events()
    cfg = TrainConfig(epochs=2, warmup_steps=0, batch_size=8, checkpoint_every=1, max_nonfinite_steps=4)
    with pytest.raises(FintrainError, match=r"4 optimizer steps in a row \(to step 6\) had a non-finite loss") as err:
        fit(model, tiny_data(), cfg, sink, Checkpointer(tmp_path, {}))
    assert err.value.exit_code == 1
    assert len(sink.of(Event.NONFINITE)) == 4
    for name in (LAST, LAST_PREV):
        weights = load_checkpoint(tmp_path / name)["model"]
        assert all(torch.isfinite(t).all() for t in weights.values())


def test_a_good_step_resets_the_count_in_a_row(tmp_path):
    model, sink = NanWhen(lambda call: call % 3 != 0), Events()  # two bad steps, one good, ...
    cfg = TrainConfig(epochs=1, warmup_steps=0, batch_size=8, max_nonfinite_steps=3)
    result = fit(model, tiny_data(), cfg, sink, Checkpointer(tmp_path, {}))
    assert result.state.skipped_steps == 6 and result.state.step == 8
