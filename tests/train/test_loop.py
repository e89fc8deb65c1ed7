"""The loop's pure helpers (learning-rate schedule, loss choice, positive-class weight) and fit()'s records."""

import signal
import time

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from fintrain.config import TrainConfig
from fintrain.dataset import WindowSet
from fintrain.errors import TrainingStopped
from fintrain.thermal import ThermalStatus
from fintrain.train.checkpoint import load_checkpoint
from fintrain.train.loop import (
    Checkpointer,
    FitData,
    FitState,
    StopReason,
    evaluate,
    fit,
    loss_function,
    lr_factor,
    predict,
    resolve_pos_weight,
    total_steps,
    train_step,
)


def test_warmup_then_cosine_to_the_floor():
    cfg = TrainConfig(warmup_steps=10, min_lr_ratio=0.1)
    total = 200
    assert lr_factor(0, cfg, total) == pytest.approx(0.1)
    assert lr_factor(9, cfg, total) == pytest.approx(1.0)
    assert lr_factor(10, cfg, total) == pytest.approx(1.0)
    assert lr_factor(105, cfg, total) == pytest.approx(0.55)  # halfway down the cosine
    assert lr_factor(199, cfg, total) == pytest.approx(0.1, abs=1e-3)
    assert lr_factor(500, cfg, total) == pytest.approx(0.1)


def test_warmup_is_at_most_a_tenth_of_a_short_run():
    cfg = TrainConfig(warmup_steps=100)
    assert lr_factor(1, cfg, 20) == pytest.approx(1.0)  # 2-step warm-up for a 20-step run
    assert lr_factor(0, TrainConfig(schedule="constant", warmup_steps=0), 50) == 1.0


def test_total_steps_respects_max_steps():
    assert total_steps(TrainConfig(epochs=3), 10) == 30
    assert total_steps(TrainConfig(epochs=3, max_steps=7), 10) == 7


def test_losses_and_positive_weight():
    y = torch.tensor([1.0, 0.0, 0.0, 0.0])
    out = torch.zeros(4)
    assert loss_function("threshold")(out, y).item() == pytest.approx(0.693147, rel=1e-5)
    assert loss_function("return")(torch.tensor([0.1, 0.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(0.005)
    assert resolve_pos_weight(TrainConfig(pos_weight="auto"), "threshold", y).item() == pytest.approx(3.0)
    assert resolve_pos_weight(TrainConfig(pos_weight=2.5), "direction", y).item() == pytest.approx(2.5)
    assert resolve_pos_weight(TrainConfig(pos_weight="auto"), "return", y) is None


def test_fit_state_round_trip():
    state = FitState(step=5, best_val=0.5, stop=StopReason.EARLY_STOPPING)
    assert FitState.from_dict({**state.to_dict(), "unknown": 1}) == state
    assert state.to_dict()["stop"] == "early_stopping" and type(state.to_dict()["stop"]) is str  # weights_only loads it


def test_a_checkpoint_from_before_the_stop_reason_enum_reads_back():
    old = {"step": 9, "done": True, "stop_reason": "early stopping (patience 5)"}
    assert FitState.from_dict(old).stop is StopReason.EARLY_STOPPING
    assert FitState.from_dict({**old, "stop_reason": "max_steps=9"}).stop is StopReason.MAX_STEPS
    assert FitState.from_dict({**old, "stop_reason": "epochs=3"}).stop is StopReason.EPOCHS
    assert not FitState.from_dict({"step": 4, "done": False, "stop_reason": ""}).done
    assert StopReason.MAX_STEPS.describe(TrainConfig(max_steps=9)) == "max_steps=9"


class RecordingSink:
    def __init__(self):
        self.records: list[dict] = []

    def log(self, record, step):
        self.records.append({**record.to_json(), "at": step})

    def close(self):
        pass


class NewSampleEvery:
    """A monitor whose status is a new object every ``every`` steps (one per sensor sample).

    The loop asks once before each step, so the question before step k + 1 sees the sample
    taken after step k.
    """

    def __init__(self, every: int):
        self.every = every
        self.asked = 0
        self._status = ThermalStatus(temp_c=60.0, band="normal", samples=0)

    def status(self):
        steps_done = self.asked
        self.asked += 1
        if steps_done and steps_done % self.every == 0:
            samples = steps_done // self.every
            self._status = ThermalStatus(temp_c=60.0 + samples, band="normal", samples=samples,
                                         pressure=samples % 3)
        return self._status


def tiny_split(n: int, seed: int) -> WindowSet:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n + 7, 3, generator=generator)
    labels = (torch.rand(n + 7, generator=generator) > 0.5).float()
    return WindowSet(features, labels, torch.arange(7, n + 7), context_len=8, dates=pl.Series(range(n)))


class LastRow(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x):  # (B, L, C) -> (B, 1)
        return self.linear(x[:, -1])


def test_fit_shows_each_new_thermal_sample_at_once_and_logs_the_mean_loss(tmp_path):
    torch.manual_seed(0)
    monitor = NewSampleEvery(every=3)
    sink = RecordingSink()
    cfg = TrainConfig(epochs=2, log_every=5, warmup_steps=0, checkpoint_every=1000, batch_size=8)
    data = FitData(tiny_split(64, 1), tiny_split(32, 2), "direction")
    result = fit(LastRow(), data, cfg, sink, Checkpointer(tmp_path, {}), monitor=monitor)
    assert result.state.step == 16
    status_temps = [r["thermal/temp_c"] for r in sink.records if r["kind"] == "status"]
    # Each sample is shown at the step after it arrived, between log steps too (5, 8, 10, 15, 16).
    assert sorted(set(status_temps)) == [60.0 + k for k in range(6)]
    assert {r["thermal/pressure"] for r in sink.records if r["kind"] == "status"} == {None, 0, 1, 2}
    shown_at = {r["thermal/temp_c"]: r["at"] for r in reversed(sink.records) if r["kind"] == "status"}
    assert shown_at[61.0] == 3 and shown_at[62.0] == 6 and shown_at[64.0] == 12
    times = [r["time_s"] for r in sink.records if r["kind"] == "status"]  # the panel's ETA
    assert times == sorted(times) and times[-1] == pytest.approx(result.state.train_seconds, abs=0.01)
    # The epoch's training loss is the mean over its samples of the logged windows' means.
    train = [r for r in sink.records if r["kind"] == "train"]
    epochs = [r for r in sink.records if r["kind"] == "epoch"]
    first = [r for r in train if r["epoch"] == 1]
    assert [r["step"] for r in first] == [5, 8]
    assert epochs[0]["train/loss"] == pytest.approx((first[0]["train/loss"] * 40 + first[1]["train/loss"] * 24) / 64)


def test_resuming_with_another_number_of_ranks_takes_rank_0s_rng_and_says_so(caplog):
    from fintrain.train.distributed import Distributed
    from fintrain.train.loop import _rank_rng

    checkpoint = {"rng": {"cpu": "rank 0"}, "rng_ranks": [{"cpu": "rank 0"}, {"cpu": "rank 1"}]}
    assert _rank_rng(checkpoint, Distributed(rank=1, world_size=2)) == {"cpu": "rank 1"}
    assert caplog.records == []
    assert _rank_rng(checkpoint, Distributed()) == {"cpu": "rank 0"}
    assert "saved by 2 rank(s) and is resumed by 1" in caplog.text
    older = {"rng": {"cpu": "rank 0"}}  # written before rng_ranks existed
    caplog.clear()
    assert _rank_rng(older, Distributed()) == {"cpu": "rank 0"} and caplog.records == []


class Constant(nn.Module):
    """Predicts 0 whatever its weight: the validation loss never improves after the first epoch."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, x):  # (B, L, C) -> (B, 1)
        return torch.zeros(len(x), 1) * self.weight


def test_training_stops_after_patience_epochs_without_improvement(tmp_path):
    sink = RecordingSink()
    cfg = TrainConfig(epochs=10, patience=2, log_every=100, warmup_steps=0, checkpoint_every=1000, batch_size=16)
    data = FitData(tiny_split(32, 1), tiny_split(16, 2), "direction")
    result = fit(Constant(), data, cfg, sink, Checkpointer(tmp_path, {}))
    # Epoch 1 sets the best loss; epochs 2 and 3 do not beat it; no fourth epoch.
    assert [r.epoch for r in result.history] == [1, 2, 3]
    assert result.state.stop is StopReason.EARLY_STOPPING and result.state.best_epoch == 0
    assert [r["message"] for r in sink.records if r.get("event") == "early_stop"] == [
        "no validation improvement for 2 epochs"
    ]


def test_train_step_clips_the_gradient_norm():
    torch.manual_seed(0)
    model = LastRow()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # the step is minus the (clipped) gradient
    x, y = 100 * torch.randn(8, 8, 3), torch.ones(8)
    cfg = TrainConfig(grad_clip=0.5, batch_size=8)
    train_step(model, optimizer, loss_function("return"), x, y, cfg)
    moved = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model.parameters(), before, strict=True)])
    assert moved.norm().item() == pytest.approx(0.5, rel=1e-4)
    unclipped = LastRow()
    unclipped.load_state_dict(dict(zip(unclipped.state_dict(), before, strict=True)))
    sgd = torch.optim.SGD(unclipped.parameters(), lr=1.0)
    train_step(unclipped, sgd, loss_function("return"), x, y, TrainConfig(grad_clip=None, batch_size=8))
    free = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(unclipped.parameters(), before, strict=True)])
    assert free.norm().item() > 10  # without the clip the same batch moves the weights far more


def _fit_selecting(tmp_path, select):
    torch.manual_seed(1)
    cfg = TrainConfig(epochs=6, log_every=50, warmup_steps=0, batch_size=16, lr=0.05, patience=10, seed=1)
    data = FitData(tiny_split(128, 1), tiny_split(64, 3), "direction", select)
    folder = tmp_path / select
    folder.mkdir()
    return fit(LastRow(), data, cfg, RecordingSink(), Checkpointer(folder, {})), folder


@pytest.mark.slow
def test_selection_on_validation_auc_picks_another_epoch_than_validation_loss(tmp_path):
    by_auc, auc_dir = _fit_selecting(tmp_path, "auc")
    by_loss, loss_dir = _fit_selecting(tmp_path, "loss")
    # The same training either way (patience is not reached): only the choice differs.
    losses = [r.val["loss"] for r in by_loss.history]
    aucs = [r.val["auc"] for r in by_auc.history]
    assert losses == [r.val["loss"] for r in by_auc.history]
    assert by_loss.state.best_epoch == int(np.argmin(losses)) == 4
    assert by_auc.state.best_epoch == int(np.argmax(aucs)) == 3
    assert by_auc.state.best_score == max(aucs) and by_auc.state.best_metric == max(aucs)
    assert by_auc.state.best_val == losses[3]  # the loss of the selected epoch, not the lowest
    # best.pt holds the selected epoch's weights.
    assert load_checkpoint(auc_dir / "best.pt")["state"]["best_epoch"] == 3
    assert load_checkpoint(loss_dir / "best.pt")["state"]["best_epoch"] == 4


def test_evaluation_runs_in_float32_whatever_the_training_precision():
    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 1)
            self.dtypes = []

        def forward(self, x):
            out = self.linear(x[:, -1])
            self.dtypes.append(out.dtype)
            return out

    model = Probe()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as a bf16 training step would leave it
        output, _ = predict(model, tiny_split(32, 1), 8, "direction")
        evaluate(model, tiny_split(32, 1), 8, "direction", loss_function("direction"))
    assert set(model.dtypes) == {torch.float32}
    # bf16 logits tie: at most 256 values per binade; float32 ones on 32 windows are all distinct.
    assert len(np.unique(output)) == 32


class CtrlCAfterCheckpoint(RecordingSink):
    """Presses Ctrl-C (a real SIGINT) as the checkpoint of ``at_step`` is announced."""

    def __init__(self, at_step: int):
        super().__init__()
        self.at_step = at_step
        self.pressed = False

    def log(self, record, step):
        super().log(record, step)
        if record.to_json().get("event") == "checkpoint" and step == self.at_step and not self.pressed:
            self.pressed = True  # once: a second SIGINT aborts
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("checkpoint_every, at_step", [(4, 4), (100, 8)], ids=["every-n-steps", "end-of-epoch"])
def test_ctrl_c_right_after_a_checkpoint_does_not_save_the_same_state_again(tmp_path, monkeypatch, checkpoint_every,
                                                                           at_step):
    import fintrain.train.loop as loop

    writes = []
    real_save = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint", lambda path, payload: (writes.append((path.name, payload["step"])),
                                                                        real_save(path, payload)))
    sink = CtrlCAfterCheckpoint(at_step)
    cfg = TrainConfig(epochs=3, log_every=100, warmup_steps=0, checkpoint_every=checkpoint_every, batch_size=8)
    data = FitData(tiny_split(64, 1), tiny_split(16, 2), "direction")
    with pytest.raises(TrainingStopped) as stopped:
        fit(LastRow(), data, cfg, sink, Checkpointer(tmp_path, {}))
    assert stopped.value.exit_code == 130
    assert [w for w in writes if w[0] == "last.pt"] == [("last.pt", at_step)], "last.pt written once at that step"
    events = [(r["event"], r["at"]) for r in sink.records if r["kind"] == "event"]
    assert events.count(("checkpoint", at_step)) == 1 and ("interrupted", at_step) in events
    assert load_checkpoint(tmp_path / "last.pt")["step"] == at_step


class SlowLastRow(LastRow):
    """A model whose every forward pass takes at least ``delay_s`` (a big model on a slow CPU)."""

    def __init__(self, delay_s: float):
        super().__init__()
        self.delay_s = delay_s

    def forward(self, x):
        if self.training:
            time.sleep(self.delay_s)
        return super().forward(x)


def test_the_panel_gets_lr_speed_and_a_running_loss_from_step_1_and_slow_models_log_by_time(tmp_path):
    torch.manual_seed(0)
    data = FitData(tiny_split(64, 1), tiny_split(16, 2), "direction")
    by_steps = RecordingSink()
    cfg = TrainConfig(epochs=1, log_every=1000, log_every_s=1000, warmup_steps=0, batch_size=8)
    fit(SlowLastRow(0.0), data, cfg, by_steps, Checkpointer(tmp_path, {}))
    assert [r["step"] for r in by_steps.records if r["kind"] == "train"] == [8]  # the epoch's end only
    first_train = next(i for i, r in enumerate(by_steps.records) if r["kind"] == "train")
    early = [r for r in by_steps.records[:first_train] if r["kind"] == "status" and "lr" in r]
    assert early and early[0]["at"] == 1, "running figures right after the first step"
    assert early[0]["lr"] > 0 and early[0]["throughput"] > 0 and early[0]["train/loss"] > 0
    # A slow model: a train record whenever log_every_s passed, long before log_every steps.
    by_time = RecordingSink()
    slow = TrainConfig(epochs=1, log_every=1000, log_every_s=0.05, warmup_steps=0, batch_size=8)
    fit(SlowLastRow(0.06), data, slow, by_time, Checkpointer(tmp_path, {}))
    steps = [r["step"] for r in by_time.records if r["kind"] == "train"]
    assert steps[0] <= 3 and len(steps) >= 4 and steps[-1] == 8
