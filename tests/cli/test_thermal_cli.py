"""``fintrain thermal-watch`` through the real CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fintrain.thermal import NoSensor, read_trace, sources


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    rows = ["t_s,temp_c,pressure"] + [f"{t},{60 + t / 2:.1f},0" for t in range(0, 101, 5)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def no_sensors(monkeypatch):
    """A machine without any sensor, whatever this one has."""
    for name in sources.AUTO_ORDER:
        monkeypatch.setitem(sources.SENSORS, name, lambda a, f, c, name=name: NoSensor(f"{name}: none here"))
    monkeypatch.setitem(sys.modules, "pynvml", None)


def test_without_sensors_says_so_and_exits_0(cli, no_sensors):
    result = cli("thermal-watch", "--duration", "2")
    assert result.exit_code == 0, result.output
    assert "no temperature sensor available" in result.stderr
    assert result.stdout == ""


def test_explicit_source_without_sensor_says_so(cli, monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "SYSFS_ROOT", tmp_path)
    result = cli("thermal-watch", "--source", "linux", "--duration", "1")
    assert result.exit_code == 0
    assert "no temperature sensor available: linux" in result.stderr


def test_replay_prints_one_line_per_sample_and_logs_a_replayable_trace(cli, trace, tmp_path):
    log = tmp_path / "rec.csv"
    result = cli("thermal-watch", "--source", f"replay:{trace}?speed=100", "--interval", "0.1",
                 "--duration", "0.5", "--log", str(log))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6  # samples at 0, 0.1, ..., 0.5 s
    assert "60.0 C normal" in lines[0] and "pressure nominal" in lines[0] and "policy run" in lines[0]
    last_temp = float(lines[-1].split()[1])
    assert 80 <= last_temp <= 88  # about 50 s into the trace: 60 + 50 / 2
    recorded = read_trace(log)
    assert len(recorded.t_s) == 6 and recorded.t_s[0] == 0.0
    assert recorded.temp_c[0] == 60.0 and recorded.pressure[0] == 0
    assert recorded.t_s[-1] == pytest.approx(50, abs=5)  # 0.5 s at 100 x
    assert "6 samples, min 60.0 C" in result.stderr


def test_none_source_exits_0(cli):
    result = cli("thermal-watch", "--source", "none")
    assert result.exit_code == 0
    assert "off" in result.stderr


def test_unknown_source_is_a_usage_error(cli):
    result = cli("thermal-watch", "--source", "thermometer")
    assert result.exit_code == 2
    assert "thermal.source" in result.stderr


def test_missing_trace_is_one_clear_line(cli, tmp_path):
    result = cli("thermal-watch", "--source", f"replay:{tmp_path / 'nope.csv'}")
    assert result.exit_code == 1
    assert "replay trace not found" in result.stderr
    assert "Traceback" not in result.output


def test_log_in_a_missing_folder_is_an_error(cli, trace, tmp_path):
    result = cli("thermal-watch", "--source", f"replay:{trace}", "--duration", "0",
                 "--log", str(tmp_path / "no" / "such" / "rec.csv"))
    assert result.exit_code == 1
    assert "cannot write the log" in result.stderr


def test_source_from_the_environment(cli, trace):
    result = cli("thermal-watch", "--duration", "0", env={"FINTRAIN_THERMAL__SOURCE": f"replay:{trace}"})
    assert result.exit_code == 0, result.output
    assert "60.0 C normal" in result.stdout


def test_on_a_terminal_the_view_is_live(cli, trace, monkeypatch):
    import io

    from rich.console import Console

    from fintrain.cli import thermal as thermal_cli

    screen = io.StringIO()
    monkeypatch.setattr(thermal_cli, "out_console", Console(file=screen, force_terminal=True, width=100))
    result = cli("thermal-watch", "--source", f"replay:{trace}?speed=100", "--interval", "0.1", "--duration", "0.2")
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    assert "fintrain thermal-watch" in shown and "min / max" in shown
    assert result.stdout == ""  # the view went to the terminal, not as plain lines


def test_real_command_on_this_machine_exits_0(tmp_path):
    """The installed command, as a user runs it: a sample line, or a clear 'no sensor' line."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "fintrain", "thermal-watch", "--duration", "0"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "no temperature sensor available" in done.stderr or "policy run" in done.stdout
