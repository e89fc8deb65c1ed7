from __future__ import annotations

import io
import logging
import re
import threading
import time
from dataclasses import replace

from rich.console import Console

from fintrain.records import PhaseRecord
from fintrain.tracking import LivePanel
from fintrain.display import SPARK_BLOCKS


def text_of(panel: LivePanel, **console_options) -> str:
    console = Console(record=True, width=100, **console_options)
    console.print(panel.render())
    return console.export_text(styles=bool(console_options))


def fed(info, rec) -> LivePanel:
    panel = LivePanel(info)
    for step, loss in ((5, 0.72), (10, 0.69), (15, 0.66), (20, 0.60)):
        panel.log(rec.train(step, loss, epoch=(step - 1) // 10 + 1), step)
    panel.log(rec.epoch(1, 10, val_loss=0.613, auc=0.571), 10)
    panel.log(rec.status(), 20)
    panel.log(rec.event("best", 10, "new best validation loss 0.61300"), 10)
    panel.log(rec.event("checkpoint", 20, "saved last.pt at step 20"), 20)
    return panel


def test_panel_shows_run_facts_progress_losses_and_thermal_state(info, rec):
    text = text_of(fed(info, rec))
    assert "20261128-a20-2m" in text
    for fact in ("device cpu", "ticker SPY", "tier a20", "budget 2m", "params 2,013,441"):
        assert fact in text
    assert "2/3" in text  # epoch 2 in progress
    assert "20/30" in text and "67%" in text
    # 15 steps in 7.5 s since the first record: 10 steps left take 5 s.
    assert "ETA 5s" in text
    assert "3.00e-04" in text and "samples/s 1,500" in text
    assert "train 0.6000" in text and "val 0.6130" in text
    assert "▇" in text or "█" in text  # the sparkline of the four losses
    assert "val auc 0.5710 (epoch 1)" in text
    assert "71.5 C acceptable" in text and "max 74.0 C" in text and "hottest sensor 80.2 C" in text
    assert "running" in text
    assert "1.50 GiB" in text
    assert "new best validation loss 0.61300" in text and "saved last.pt at step 20" in text


def test_sparkline_follows_the_loss_from_high_to_low(info, rec):
    panel = LivePanel(info)
    for step, loss in enumerate((8.0, 6.0, 4.0, 2.0, 1.0), start=1):
        panel.log(rec.train(step, loss), step)
    # Scaled between the minimum (lowest block) and the maximum (full block).
    assert "█▆▄▂▁" in text_of(panel)
    assert SPARK_BLOCKS[0] == "▁" and SPARK_BLOCKS[-1] == "█"


def test_paused_state_says_how_long_how_hot_and_which_way(info, rec):
    panel = fed(info, rec)
    panel.log(rec.status(state="paused", paused_s=42.4, thermal__temp_c=91.3, thermal__band="warning",
                         thermal__trend="falling"), 20)
    text = text_of(panel)
    assert "paused 42 s, 91 C, falling" in text
    assert "91.3 C warning" in text


def test_no_sensor_and_monitor_off(info, rec):
    panel = LivePanel(info)
    panel.log(rec.status(thermal__temp_c=None, thermal__temp_max_c=None, thermal__hottest_c=None,
                         thermal__band="no reading", memory_bytes=None), 0)
    text = text_of(panel)
    assert "no sensor" in text
    assert re.search(r"memory +n/a", text)
    panel.log(rec.status(thermal__temp_c=None, thermal__band="off"), 0)
    assert "monitor off" in text_of(panel)


def test_pressure_only_says_the_bands_are_off(info, rec):
    panel = LivePanel(info)
    panel.log(rec.status(thermal__temp_c=None, thermal__temp_max_c=None, thermal__hottest_c=None,
                         thermal__band="no reading", thermal__pressure=0), 0)
    text = text_of(panel)
    assert "no temperature: OS pressure nominal only (bands off)" in text
    assert "no sensor" not in text and "normal" not in text.replace("nominal", "")


def test_temperature_is_coloured_by_band(info, rec):
    colours = {"normal": "\x1b[32m", "acceptable": "\x1b[33m", "warning": "\x1b[38;5;208m", "critical": "\x1b[1;31m"}
    for band, escape in colours.items():
        panel = LivePanel(info)
        panel.log(rec.status(thermal__temp_c=80.0, thermal__band=band), 1)
        styled = text_of(panel, force_terminal=True, color_system="256")
        assert f"{escape}80.0 C" in styled, band


def test_final_record_shows_test_metrics_beside_baselines(info, rec):
    panel = fed(info, rec)
    panel.log(rec.final(), 30)
    text = text_of(panel)
    assert "auc 0.5612" in text
    assert "base_rate auc 0.5000" in text and "logistic auc 0.5301" in text


def test_a_resumed_run_starts_at_its_step_without_a_bogus_eta(info, rec):
    panel = LivePanel(replace(info, start_step=20))
    panel.log(rec.train(25, 0.5, epoch=3, time_s=10.0), 25)
    text = text_of(panel)
    assert "25/30" in text and "ETA --" in text


def test_eta_comes_from_status_records_before_the_first_log_step(info, rec):
    panel = LivePanel(info)
    panel.log(rec.status(time_s=0.00002), 0)  # the status before the first step
    assert "ETA --" in text_of(panel)
    panel.log(rec.status(time_s=4.0), 2)  # 2 steps in 4 s; 28 to go
    text = text_of(panel)
    assert "2/30" in text and "ETA 56s" in text


def recorded_renders(panel: LivePanel) -> list[str]:
    """The name of the thread of each ``render`` call from now on (appended as they happen)."""
    threads: list[str] = []
    render = panel.render

    def recording_render():
        threads.append(threading.current_thread().name)
        return render()

    panel.render = recording_render  # type: ignore[method-assign]
    return threads


def test_log_only_stores_and_rendering_happens_on_the_panels_thread(info, rec):
    console = Console(record=True, width=100, force_terminal=True)
    panel = LivePanel(info, console=console, refresh_per_second=50)
    threads = recorded_renders(panel)
    for step in range(1, 21):  # before start: nothing is drawn
        panel.log(rec.train(step, 0.7), step)
        panel.log(rec.status(), step)
    assert threads == []
    caller = threading.current_thread().name
    with panel:  # start() draws once on the caller's thread, then the panel's thread takes over
        drawn_at_start = len(threads)
        for step in range(21, 31):
            panel.log(rec.train(step, 0.6, epoch=3), step)
            panel.log(rec.status(), step)
        threading.Event().wait(0.3)
        while_logging = threads[drawn_at_start:]
    assert while_logging, "the panel's thread redraws the panel"
    assert caller not in while_logging
    assert "30/30" in console.export_text()


def test_an_unchanged_panel_is_not_redrawn(info, rec):
    console = Console(record=True, width=100, force_terminal=True)
    panel = LivePanel(info, console=console, refresh_per_second=50)
    renders = recorded_renders(panel)
    with panel:
        at_start = len(renders)
        threading.Event().wait(0.3)  # 15 redraw slots, nothing logged
        assert len(renders) == at_start, "no redraw without a new record"
        panel.log(rec.train(5, 0.7), 5)
        for _ in range(100):  # the change is drawn within a few slots
            if len(renders) > at_start:
                break
            threading.Event().wait(0.02)
        assert len(renders) == at_start + 1
        threading.Event().wait(0.2)
        assert len(renders) == at_start + 1, "one redraw for one change"
    assert "5/30" in console.export_text()


def test_a_failed_redraw_is_logged_once_and_the_next_change_is_drawn(info, rec, caplog):
    console = Console(record=True, width=100, force_terminal=True)
    panel = LivePanel(info, console=console, refresh_per_second=50)
    render = panel.render
    calls = {"n": 0, "failing": False}

    def flaky_render():
        calls["n"] += 1
        if calls["failing"]:
            calls["failing"] = False
            raise ValueError("a drawing bug")
        return render()

    panel.render = flaky_render  # type: ignore[method-assign]
    with panel:
        calls["failing"] = True
        panel.log(rec.train(5, 0.7), 5)
        for _ in range(100):
            if not calls["failing"]:
                break
            threading.Event().wait(0.02)
        panel.log(rec.train(17, 0.6), 17)
        drawn_before = calls["n"]
        for _ in range(100):
            if calls["n"] > drawn_before:
                break
            threading.Event().wait(0.02)
        assert calls["n"] > drawn_before, "the thread survived and drew the next change"
    assert "drawing the live panel failed" in caplog.text and caplog.text.count("a drawing bug") >= 1
    assert "17/30" in console.export_text()


def test_panel_counts_the_steps_skipped_for_non_finite_values(info, rec):
    panel = fed(info, rec)
    assert "skipped" not in text_of(panel)
    for step in (12, 13):
        panel.log(rec.event("nonfinite", step, f"non-finite loss or gradient norm at step {step + 1}: optimizer "
                            "step skipped"), step)
    assert "2 skipped (non-finite)" in text_of(panel)


def test_lr_speed_and_running_loss_show_before_the_first_log_step(info, rec):
    panel = LivePanel(info)
    assert "samples/s -" in text_of(panel) and "train -" in text_of(panel)
    panel.log(replace(rec.status(time_s=2.0), loss=0.6931, lr=1.5e-5, throughput=123.4), 1)
    text = text_of(panel)
    assert "1.50e-05" in text and "samples/s 123" in text and "train 0.6931" in text
    panel.log(rec.train(20, 0.61), 20)  # the train record is newer: its figures
    text = text_of(panel)
    assert "3.00e-04" in text and "samples/s 1,500" in text and "train 0.6100" in text


def _until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_warning_logged_under_the_live_panel_is_printed_once_above_it(info, rec, screen):
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=100, color_system=None)
    # As `logging.basicConfig` sets it up in the CLI: a handler holding the terminal's stream.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("fintrain.thermal.monitor.test")
    logger.addHandler(handler)
    logger.propagate = False
    panel = LivePanel(info, console=console, refresh_per_second=50)
    renders = recorded_renders(panel)
    try:
        with panel:
            panel.log(replace(rec.status(time_s=1.0), loss=0.69, lr=3e-5, throughput=210.0), 1)
            _until(lambda: len(renders) >= 2)
            # From the monitor's thread, as the "no temperature reading" warning comes.
            warner = threading.Thread(target=logger.warning, args=("no temperature reading from thermal source "
                                                                    "'auto'; training without thermal protection",))
            warner.start()
            warner.join()
            for step in (2, 3):
                panel.log(replace(rec.status(time_s=float(step)), loss=0.68, lr=3e-5, throughput=220.0), step)
                drawn = len(renders)
                _until(lambda: len(renders) > drawn)
            panel.log(PhaseRecord("evaluating test", 3, 16), 3)
    finally:
        logger.removeHandler(handler)
    assert handler.stream is stream, "the handler has its own stream back"
    lines = screen(stream.getvalue())
    tops = [i for i, line in enumerate(lines) if line.startswith("╭") and "fintrain train" in line]
    warnings = [i for i, line in enumerate(lines) if "no temperature reading" in line]
    assert len(tops) == 1, "\n".join(lines)
    assert len(warnings) == 1 and warnings[0] < tops[0], "\n".join(lines)
    assert lines[warnings[0]].startswith("WARNING: no temperature reading")
    panel_text = "\n".join(lines[tops[0]:])
    assert "3.00e-05" in panel_text and "samples/s 220" in panel_text and "train 0.6800" in panel_text
    assert "evaluating test 3/16 batches" in panel_text
