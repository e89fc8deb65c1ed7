"""Fixtures shared by the whole suite."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from fintrain.cli import app
from fintrain.data import raw_path
from fintrain.features import features_path
from fintrain.records import TrainRecord

REPO = Path(__file__).resolve().parents[1]
# Real files too large for the repository live in a shared data folder: FINTRAIN_SHARED_DATA, else
# shared/data beside the clone. Tests that need one skip without it, saying how to get it.
SHARED_DATA = Path(os.environ.get("FINTRAIN_SHARED_DATA") or REPO.parent / "shared" / "data")
SPY_CSV = SHARED_DATA / "SPY_daily_1993-2021.csv"


def shared_file_missing(name: str) -> str:
    """The skip reason of a test whose shared data file is absent: what is missing, how to get it."""
    return (f"needs {name} from the shared data folder: set FINTRAIN_SHARED_DATA to the folder that "
            "holds it, or put the folder at shared/data beside this clone")

_spec = importlib.util.spec_from_file_location("strict_device", Path(__file__).parent / "strict_device.py")
strict_device_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(strict_device_module)

# Tests set only max_examples; everything else comes from the profile. "ci" (the default, and
# what .ci/run sets) replays the same examples on every run; "dev" draws new ones each run and
# keeps the failures it finds in .hypothesis/ so that they are tried first next time.
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.register_profile("dev", deadline=None, derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# A run small enough to train in seconds on a shared CPU: MSFT's offline sample, a one-layer
# d_model-16 PatchTST (a few thousand parameters), CPU, no thermal sensor.
TINY_RUN: dict[str, dict[str, object]] = {
    "data": {"ticker": "MSFT", "source": "sample", "start": "2008-01-01"},
    "model": {"budget": "2m", "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
    "split": {"context_len": 32},
    "train": {"epochs": 1, "batch_size": 64, "device": "cpu"},
    "thermal": {"source": "none"},
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return f'"{value}"'


def tiny_run_toml(**sections: dict[str, object]) -> str:
    """The TOML of ``TINY_RUN`` with each section's keys updated by ``sections``."""
    merged = {name: dict(keys) for name, keys in TINY_RUN.items()}
    for name, keys in sections.items():
        merged.setdefault(name, {}).update(keys)
    return "\n".join(
        f"[{name}]\n" + "".join(f"{key} = {_toml_value(value)}\n" for key, value in keys.items())
        for name, keys in merged.items()
    )


@pytest.fixture(scope="session")
def tiny_toml():
    """``tiny_run_toml``: a tiny offline run's TOML, sections overridden by keyword."""
    return tiny_run_toml


@pytest.fixture(autouse=True)
def _clean_fintrain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own FINTRAIN_* settings."""
    for name in list(os.environ):
        if name.startswith("FINTRAIN_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_dns_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Yahoo's host resolves without a DNS query; a test of an offline machine makes it fail."""
    from fintrain.data import sources

    monkeypatch.setattr(sources, "resolve_host", lambda host: None)


@pytest.fixture
def spy_csv() -> Path:
    """The shared SPY file (daily OHLCV 1993-2021); the test skips, saying how to get it, without it."""
    if not SPY_CSV.is_file():
        pytest.skip(shared_file_missing(SPY_CSV.name))
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

    def raw_file(self, ticker: str) -> Path:
        """The file of a ticker's current raw version."""
        return raw_path(self.data_dir, ticker)

    def features_file(self, ticker: str, tier: str = "a20") -> Path:
        """The file of a ticker's current features of a tier."""
        path = features_path(self.data_dir, ticker, tier)
        assert path is not None, f"no {tier} features for {ticker}"
        return path


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


@pytest.fixture
def strict_device():
    """``strict_device()``: a context manager in which ``cpu:0`` behaves like MPS (no float64
    from device tensors, no ``.numpy()`` on them; see tests/strict_device.py), and the library's
    ``resolve_device("cpu")`` gives ``cpu:0``. It yields the mode (``mode.mark(t)``)."""
    return strict_device_module.strict_device


class AtTrainRecord:
    """A sink that calls ``action(step)`` at each ``train`` record (every ``log_every`` steps).

    How tests crash, interrupt or look into a run from outside, as a caller's own sink would
    (``RunOptions(sinks=...)``), with no seam in the library's signatures.
    """

    def __init__(self, action):
        self.action = action

    def log(self, record, step):
        if isinstance(record, TrainRecord):
            self.action(step)

    def close(self):
        pass


@pytest.fixture
def at_train_record():
    """The ``AtTrainRecord`` sink class."""
    return AtTrainRecord


_spec = importlib.util.spec_from_file_location("fault_injection", Path(__file__).with_name("fault_injection.py"))
fault_injection = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fault_injection)
# Registered under its name, so that a forked process can unpickle its functions.
sys.modules["fault_injection"] = fault_injection
KILLED = fault_injection.KILLED


def kill_at_each_write_step(action: list[str], reset, check) -> int:
    """Run ``action`` (see tests/fault_injection.py) killed at its 1st, 2nd, ... write step.

    Before each run ``reset()`` restores the starting state; after each kill ``check(n)``
    asserts what must hold. Stops at the first run that is not killed (it wrote everything)
    and returns how many kill points there were.
    """
    n = 0
    while True:
        n += 1
        assert n < 100, "the action never finished"
        reset()
        code = fault_injection.killed_run(n, action[0], action[1:])
        if code == 0:
            return n - 1
        assert code == KILLED, f"{action} at step {n} exited {code}"
        check(n)


@pytest.fixture
def kill_at_each_step():
    """The ``kill_at_each_write_step`` function."""
    return kill_at_each_write_step
