"""The ``command:CMD`` source: any program that prints a temperature or a JSON line.

The command is started once. A streaming command (``macmon pipe -s 0`` prints one JSON object
a second) is read line by line by a background thread and each ``read()`` takes the latest
value; a command that prints one value and exits is started again at the next ``read()``.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fintrain.errors import ThermalError
from fintrain.thermal.reading import Reading, ValueFilter, build_reading

logger = logging.getLogger(__name__)

# Fields tried, in order, when a command prints JSON and no --json-field is given.
DEFAULT_JSON_FIELDS = ("temp.cpu_temp_avg", "temp_c", "temp", "temperature")
# A number followed by a Celsius unit, for lines such as "Package id 0:  +45.0°C".
_CELSIUS = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*°?\s*C\b")


def json_value(document: Any, field: str) -> Any:
    """The value at a dotted path (``temp.cpu_temp_avg``) in a JSON document, or None."""
    node = document
    for part in field.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def parse_line(line: str, json_field: str | None = None) -> float | None:
    """The temperature in one line of a command's output, or None when there is none.

    A JSON object is read at ``json_field`` (or the first of DEFAULT_JSON_FIELDS present); a
    plain line is either a bare number or the first number with a Celsius unit.
    """
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            return None
        fields = (json_field,) if json_field else DEFAULT_JSON_FIELDS
        for field in fields:
            value = json_value(document, field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    return None
        return None
    try:
        return float(text)
    except ValueError:
        pass
    match = _CELSIUS.search(text)
    return float(match.group(1)) if match else None


class CommandSensor:
    """Reads temperatures from a command's standard output.

    Args:
        command: the command line (split like a shell would, not run through one).
        json_field: dotted field holding the temperature when the command prints JSON.
        stale_s: a streamed value older than this (real seconds) no longer counts.
        first_value_s: how long a read waits for a freshly started command's first value.
        fresh_wait_s: how long a read waits for a new value before reusing the last one.
        clock: monotonic clock, for timestamps and staleness.
    """

    def __init__(
        self,
        command: str,
        json_field: str | None = None,
        *,
        stale_s: float = 10.0,
        first_value_s: float = 5.0,
        fresh_wait_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ):
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise ThermalError(f"command:{command}: cannot split the command line: {exc}") from exc
        if not self.argv:
            raise ThermalError("command: needs a command, e.g. command:'macmon pipe -s 0'")
        if shutil.which(self.argv[0]) is None:
            raise ThermalError(f"command:{command}: {self.argv[0]!r} is not an executable on PATH")
        self.command = command
        self.json_field = json_field
        self.name = f"command {self.argv[0]}"
        self.problem: str | None = None
        self.stale_s = stale_s
        self.first_value_s = first_value_s
        self.fresh_wait_s = fresh_wait_s
        self._clock = clock
        self._filter = ValueFilter()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._new_value = threading.Condition(self._lock)
        self._latest: tuple[float, float] | None = None  # (value, clock time it arrived)
        self._taken: tuple[float, float] | None = None
        self._unparsed: deque[str] = deque(maxlen=3)
        self._stderr: deque[str] = deque(maxlen=5)
        self._closed = False

    @property
    def dropped(self) -> int:
        """Faulty values thrown away so far."""
        return self._filter.dropped

    def _start(self) -> None:
        self._latest = None
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        except OSError as exc:
            raise ThermalError(f"command:{self.command} cannot be started: {exc}") from exc
        proc = self._proc
        self._reader = threading.Thread(target=self._pump, args=(proc,), daemon=True, name="thermal-command")
        self._reader.start()
        threading.Thread(target=self._drain_stderr, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        """Reader thread: keep the latest value the command printed."""
        assert proc.stdout is not None
        for line in proc.stdout:
            value = parse_line(line, self.json_field)
            with self._new_value:
                if value is None:
                    if line.strip():
                        self._unparsed.append(line.strip()[:120])
                    continue
                self._latest = (value, self._clock())
                self._new_value.notify_all()
        with self._new_value:
            self._new_value.notify_all()

    def _drain_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip():
                self._stderr.append(line.strip()[:200])

    def _exited(self) -> bool:
        return self._proc is None or (
            self._proc.poll() is not None and (self._reader is None or not self._reader.is_alive())
        )

    def read(self) -> Reading | None:
        """The latest value the command printed, or None (with ``problem`` saying why)."""
        if self._closed:
            return None
        with self._new_value:
            if self._proc is not None and not self._exited_locked() and self._taken is not None \
                    and self._latest is self._taken:
                # Nothing new since the last read: a one-shot command may be about to exit.
                self._wait(lambda: self._latest is not self._taken, self.fresh_wait_s)
        if self._exited() and (self._latest is None or self._latest is self._taken):
            self._start()
            with self._new_value:
                # A fresh command: wait for its first value, or for it to end without one.
                self._wait(lambda: self._latest is not None, self.first_value_s)
        with self._new_value:
            latest = self._latest
        now = self._clock()
        if latest is None or now - latest[1] > self.stale_s:
            self.problem = self._why_no_value(latest is not None)
            return None
        self._taken = latest
        reading = build_reading(now, {self.json_field or "command": latest[0]}, self._filter)
        self.problem = None if reading.has_temperature else "; ".join(reading.dropped)
        return reading

    def _wait(self, done: Callable[[], bool], timeout_s: float) -> None:
        """With the lock held: wait until ``done()``, the command ends, or the timeout."""
        deadline = time.monotonic() + timeout_s
        while not done() and not self._exited_locked():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._new_value.wait(timeout=min(left, 0.05))

    def _exited_locked(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None and not (
            self._reader is not None and self._reader.is_alive()
        )

    def _why_no_value(self, stale: bool) -> str:
        if stale:
            return f"{self.command!r} printed no new value for {self.stale_s:g} s"
        parts = [f"{self.command!r} printed no temperature"]
        if self._proc is not None and self._proc.poll() not in (None, 0):
            parts.append(f"exit code {self._proc.returncode}")
        if self._unparsed:
            hint = " (set --json-field)" if self._unparsed[-1].startswith("{") else ""
            parts.append(f"last line {self._unparsed[-1]!r}{hint}")
        if self._stderr:
            parts.append(f"stderr: {self._stderr[-1]}")
        return "; ".join(parts)

    def close(self) -> None:
        """Stop the command if it still runs."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2)
        if self._reader is not None:
            self._reader.join(timeout=2)
