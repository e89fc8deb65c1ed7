from __future__ import annotations

import io
from dataclasses import replace

from fintrain.tracking import PlainLog


def run_through(log: PlainLog, rec) -> None:
    for step in (5, 10):
        log.log(rec.train(step, 0.7), step)
        log.log(rec.status(), step)
    log.log(rec.epoch(1, 10, val_loss=0.613, auc=0.571), 10)
    log.log(rec.event("thermal_pause", 12, "paused: 91.2 C in the warning band for 30 s"), 12)
    log.log(rec.status(state="paused", paused_s=3.0), 12)
    log.log(rec.event("thermal_resume", 12, "resumed after 40 s at 79.0 C"), 12)
    log.log(rec.event("checkpoint", 20, "saved last.pt at step 20 (every 20 steps)"), 20)
    log.log(rec.final(), 30)
    log.close()


def test_one_line_for_the_header_each_epoch_each_event_and_the_end(info, rec):
    stream = io.StringIO()
    run_through(PlainLog(info, stream=stream), rec)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 + 1 + 3 + 1
    header, epoch, pause, resume, checkpoint, final = lines
    assert header.startswith("run 20261128-a20-2m: SPY tier a20, budget 2m (2,013,441 params)")
    assert "device cpu" in header and "3 epochs x 10 steps" in header
    assert epoch.startswith("epoch 1/3  step 10/30  train loss 0.6400  val loss 0.6130  auc 0.5710")
    assert "best auc 0.5710 (epoch 1)" in epoch and "1,500 samples/s" in epoch
    assert "SoC 71.5 C (acceptable)" in epoch and "memory 1.50 GiB" in epoch
    assert pause == "step 12: thermal_pause: paused: 91.2 C in the warning band for 30 s"
    assert resume.startswith("step 12: thermal_resume")
    assert checkpoint.startswith("step 20: checkpoint: saved last.pt")
    assert final.startswith("done: 30 steps, best epoch 2; test auc 0.5612, accuracy 0.7000")
    assert "baselines base_rate auc 0.5000, logistic auc 0.5301" in final


def test_no_escape_codes_even_from_a_message_that_carries_them(info, rec):
    stream = io.StringIO()
    log = PlainLog(info, stream=stream)
    log.log(rec.event("interrupted", 7, "\x1b[31minterrupted\x1b[0m at step 7\nresume with --resume"), 7)
    run_through(log, rec)
    text = stream.getvalue()
    assert "\x1b" not in text
    assert "step 7: interrupted: [31minterrupted[0m at step 7 resume with --resume" in text


def test_header_mentions_a_resume_and_the_step_cap(info):
    stream = io.StringIO()
    PlainLog(replace(info, start_step=20, max_steps=25), stream=stream)
    assert "max 25 steps, resuming at step 20" in stream.getvalue()


def test_a_pressure_only_source_is_named_as_such_in_the_epoch_line(info, rec):
    stream = io.StringIO()
    log = PlainLog(info, stream=stream)
    log.log(rec.status(thermal__temp_c=None, thermal__band="no reading", thermal__pressure=1), 10)
    log.log(rec.epoch(1, 10, val_loss=0.613, auc=0.571), 10)
    log.close()
    epoch = stream.getvalue().splitlines()[-1]
    assert "SoC no temperature, OS pressure moderate only (bands off)" in epoch
    assert "(no reading)" not in epoch


def test_each_evaluation_phase_gets_one_line_as_it_starts(info, rec):
    from fintrain.records import PhaseRecord

    stream = io.StringIO()
    log = PlainLog(info, stream=stream)
    for done in range(4):
        log.log(PhaseRecord("evaluating test", done, 4), 30)
    log.log(PhaseRecord("fitting gbdt baseline"), 30)
    assert stream.getvalue().splitlines()[1:] == ["step 30: evaluating test (4 batches)", "step 30: fitting gbdt baseline"]
