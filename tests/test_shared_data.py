"""Tests that need the shared data folder skip without it, naming what is missing and how to get it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a pytest subprocess: about 7 s
def test_an_absent_shared_file_is_named_with_how_to_get_it(tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    env = {**os.environ, "FINTRAIN_SHARED_DATA": str(empty)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/cli/test_data_cli.py::test_shared_spy_csv_imports"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("SKIPPED")]
    reason = line.split(": ", 1)[1]
    assert reason == ("needs SPY_daily_1993-2021.csv from the shared data folder: set FINTRAIN_SHARED_DATA to "
                      "the folder that holds it, or put the folder at shared/data beside this clone")
    assert str(empty) not in line and str(REPO.parent) not in reason
