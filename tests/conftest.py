"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from fintrain.cli import app

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SPY_CSV = SHARED_DATA / "SPY_daily_1993-2021.csv"

settings.register_profile("ci", deadline=None, derandomize=True)
settings.register_profile("dev", deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _clean_fintrain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own FINTRAIN_* settings."""
    for name in list(os.environ):
        if name.startswith("FINTRAIN_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def spy_csv() -> Path:
    """The shared SPY file; the test skips when ../shared/data is absent."""
    if not SPY_CSV.is_file():
        pytest.skip(f"{SPY_CSV} not present")
    return SPY_CSV


class Cli:
    """Runs the real Typer app with a data and runs folder under tmp_path."""

    def __init__(self, root: Path):
        self.root = root
        self.data_dir = root / "data"
        self.runs_dir = root / "runs"
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str] | None = None):
        argv = ["--data-dir", str(self.data_dir), "--runs-dir", str(self.runs_dir), *args]
        return self.runner.invoke(app, argv, env=env, catch_exceptions=False)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Invoke ``fintrain`` with ``--data-dir``/``--runs-dir`` in tmp_path."""
    return Cli(tmp_path)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes under a folder, for byte-for-byte 'nothing changed' checks."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def folder_snapshot():
    """The ``snapshot`` function."""
    return snapshot
