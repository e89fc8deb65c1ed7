"""Typed errors. The CLI turns each into one line on stderr and an exit code."""

import difflib
from collections.abc import Iterable, Mapping


def did_you_mean(word: str, choices: Iterable[str] | Mapping[str, str], cutoff: float = 0.6) -> str:
    """``"; did you mean lr?"`` for the choice closest to ``word``, or ``""`` when none is close.

    ``choices`` may map spellings to what to suggest (``{"learning_rate": "lr"}``).
    """
    names = choices if isinstance(choices, Mapping) else {c: c for c in choices}
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=cutoff)
    return f"; did you mean {names[close[0]]}?" if close else ""


class FintrainError(Exception):
    """An error a user can act on; its message says what was wrong and what to do."""

    exit_code = 1


class ConfigError(FintrainError):
    """Invalid configuration or usage: exit code 2."""

    exit_code = 2


class StorageError(FintrainError):
    """A data or runs folder that cannot be written (a file in its place, read-only)."""


class DataError(FintrainError):
    """Market data that is missing, unreadable or invalid."""


class DataValidationError(DataError):
    """A frame that failed validation; ``problems`` lists each rule it broke."""

    def __init__(self, name: str, problems: list[str]):
        self.problems = problems
        n = len(problems)
        super().__init__(
            f"{name} is not valid daily OHLCV data ({n} problem{'s' if n != 1 else ''}): "
            + "; ".join(problems)
        )


class SourceError(DataError):
    """A data source failed (network, rate limit, empty result, unknown ticker)."""


class ManifestError(DataError):
    """A manifest that cannot be read or does not match its files."""


class FeatureError(FintrainError):
    """Features that cannot be built (unknown tier, too little data)."""


class DeviceError(FintrainError):
    """A device that cannot train this run (out of memory): exit code 1."""


class DeviceUnavailableError(DeviceError):
    """A requested device this machine does not have (``--device cuda`` without CUDA): bad
    usage, exit code 2, as for any other invalid option."""

    exit_code = 2


class CheckpointError(FintrainError):
    """A checkpoint that cannot be loaded or does not match the data."""


class ThermalError(FintrainError):
    """A temperature source that cannot be used."""


class ProbeError(FintrainError):
    """No batch size fits on this device (or the batch-size probe cannot run)."""


class TrainingStopped(FintrainError):
    """Training ended early on purpose, after saving ``last.pt``."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class RunError(FintrainError):
    """A run folder that is missing or cannot be read."""


class RunBusyError(FintrainError):
    """Another live process is training into the run folder."""


class ReportError(FintrainError):
    """Runs that cannot be compared (none finished, or of different tasks)."""
