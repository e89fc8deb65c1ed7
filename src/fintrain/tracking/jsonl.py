"""``metrics.jsonl``: every train, epoch, event and final record as one JSON object per line."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from fintrain.records import METRICS_FORMAT, PhaseRecord, Record, StatusRecord, format_line, metrics_format, upgrade_metrics
from fintrain.storage import atomic_write_bytes


def _plain(value: Any) -> Any:
    """A JSON-safe copy: NaN and infinities become null, tensors and numpy scalars plain numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item):
        return _plain(item())
    return str(value)


def _object(line: bytes) -> Any:
    """The JSON value of one stored line, or None when it does not parse."""
    try:
        return json.loads(line)
    except ValueError:
        return None


def _step_of(line: bytes) -> int | None:
    """The ``step`` of one stored line, or None when the line is not a complete record."""
    record = _object(line)
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None


class JsonlSink:
    """Appends records to a JSON-lines file, flushed line by line.

    Each line is one record with its ``step``; NaN and infinite values are written as ``null``
    so that strict JSON readers (jq, browsers) accept the file. A ``kill -9`` loses at most the
    line being written. Status records are ignored. The first line of a new file names its
    format (``{"kind": "format", "version": 2, ...}``: epochs numbered from 1); a file of an
    earlier format that a resumed run appends to is converted first, so one file holds one format.

    Args:
        path: the file, usually ``runs/<name>/metrics.jsonl``; created with its folder.
        resume_step: when resuming from a checkpoint taken at this step, lines logged after it
            (the work since the checkpoint, which the resumed run repeats) are removed first,
            so that the file reads as one uninterrupted run. A torn last line is always removed.
    """

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._repair(resume_step)
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        if self._file.tell() == 0:
            self._write(format_line())

    def _repair(self, resume_step: int | None) -> None:
        """Drop a torn last line and, on resume, the lines past the checkpoint's step."""
        data = self.path.read_bytes()
        lines = data.splitlines(keepends=True)
        keep = [
            line
            for line in lines
            if line.endswith(b"\n")
            and (resume_step is None or (step := _step_of(line)) is None or step <= resume_step)
        ]
        parsed = [d for line in keep if isinstance(d := _object(line), dict)]
        if parsed and metrics_format(parsed) < METRICS_FORMAT:
            upgraded = upgrade_metrics(parsed)
            atomic_write_bytes(self.path, b"".join(json.dumps(d, allow_nan=False).encode() + b"\n" for d in upgraded))
        elif len(keep) != len(lines):
            atomic_write_bytes(self.path, b"".join(keep))

    def log(self, record: Record, step: int) -> None:
        """Write one line for a train, epoch, event or final record."""
        # Status and phase records arrive several times a second and describe the moment, not the run.
        if self._file is None or isinstance(record, StatusRecord | PhaseRecord):
            return
        document = {"kind": record.kind, "step": step}
        document.update(_plain(record.to_json()))
        self._write(document)

    def _write(self, document: Mapping[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(document, allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
