"""Fixtures of the experiments tests: hand-made run folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("run_folders", Path(__file__).with_name("run_folders.py"))
run_folders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_folders)


@pytest.fixture
def write_run():
    """``write_run(runs_dir, name, **facts)`` writes a run folder as ``fintrain train`` would."""
    return run_folders.write_run


@pytest.fixture
def write_marker():
    """``write_marker(run_dir, pid, hostname=None, started_at=None)`` writes a ``running.json``."""
    return run_folders.write_marker


@pytest.fixture
def dead_pid():
    """The pid of a process that has exited and been reaped."""
    return run_folders.dead_pid()


@pytest.fixture
def write_predictions():
    """``write_predictions(run_dir, labels, model, baselines, ...)`` writes a run's predictions.parquet."""
    return run_folders.write_predictions
