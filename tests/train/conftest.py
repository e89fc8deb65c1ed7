"""Fixtures of the train tests: run-folder markers (shared with the experiments tests) and an
isolated batch-size cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "run_folders", Path(__file__).parents[1] / "experiments" / "run_folders.py"
)
run_folders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_folders)


@pytest.fixture
def write_marker():
    """``write_marker(run_dir, pid, hostname=None, started_at=None)`` writes a ``running.json``."""
    return run_folders.write_marker


@pytest.fixture
def dead_pid():
    """The pid of a process that has exited and been reaped."""
    return run_folders.dead_pid()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$FINTRAIN_CACHE_DIR in tmp_path: tests never touch the real cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FINTRAIN_CACHE_DIR", str(folder))
    return folder
