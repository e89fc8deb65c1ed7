"""The ``running.json`` marker: which process is training into a run folder right now.

``fintrain train`` (and each sweep cell) holds ``runs/<name>/running.json`` while it trains and
removes it on every exit Python sees (finished, Ctrl-C, thermal stop, an error). A process
killed outright (``kill -9``, a power cut) leaves it behind, so a marker alone proves nothing:
it is *live* only while the process it names still exists. ``fintrain runs`` calls a run
"running" from a live marker, and a second ``--resume`` of the same folder is refused while one
is there.

Nothing here imports torch, so ``fintrain runs list`` stays instant.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from filelock import FileLock, Timeout

from fintrain.errors import RunBusyError
from fintrain.storage import atomic_write_json, utc_now

log = logging.getLogger(__name__)

MARKER_FILE = "running.json"
# Held only while a marker is judged and written, so two processes starting on one folder at the
# same moment cannot both find it free (or both replace the same stale marker).
LOCK_FILE = "running.json.lock"
LOCK_TIMEOUT_S = 10.0

# A process on another host cannot be asked whether it is alive, so its marker counts as live
# until it is this old. A 200m model on a CPU trains for days, hence a week: a run taken for
# live a week after a crash costs a manual `rm running.json`; a live run taken for dead would
# have two processes writing the same checkpoints.
FOREIGN_LIVE_S = 7 * 24 * 3600.0

# started_at has whole seconds and a process's start time (boot time + clock ticks) can read a
# little early or late; a process started more than this after its marker is another process
# that got the same pid.
PID_REUSE_SLACK_S = 2.0


@dataclass(frozen=True)
class RunMarker:
    """The contents of a ``running.json``.

    Attributes:
        pid: the training process (rank 0 under torchrun).
        hostname: the machine it runs on.
        started_at: when it began training into the folder, ISO 8601 UTC.
        argv: its command line.
    """

    pid: int
    hostname: str
    started_at: str
    argv: list[str] = field(default_factory=list)

    @classmethod
    def for_this_process(cls) -> RunMarker:
        """A marker naming the calling process, started now."""
        return cls(pid=os.getpid(), hostname=socket.gethostname(), started_at=utc_now(), argv=list(sys.argv))

    def to_json(self) -> dict[str, Any]:
        """The document written to ``running.json``."""
        return {"pid": self.pid, "hostname": self.hostname, "started_at": self.started_at, "argv": self.argv}

    @property
    def on_this_host(self) -> bool:
        """True when the marker was written on this machine."""
        return self.hostname == socket.gethostname()

    def started_s(self) -> float | None:
        """``started_at`` as seconds since the epoch, or None when it cannot be parsed."""
        try:
            started = dt.datetime.fromisoformat(self.started_at)
        except ValueError:
            return None
        if started.tzinfo is None:
            started = started.replace(tzinfo=dt.UTC)
        return started.timestamp()

    def is_live(self, now: float | None = None) -> bool:
        """Whether the process that wrote the marker may still be training.

        On this host: its pid exists, is no zombie, and did not start after the marker (a
        recycled pid). On another host: the marker is younger than :data:`FOREIGN_LIVE_S`.

        Args:
            now: the current time in seconds since the epoch (for the other-host bound).
        """
        started = self.started_s()
        if not self.on_this_host:
            now = time.time() if now is None else now
            return started is None or now - started < FOREIGN_LIVE_S
        return _pid_alive(self.pid, started)

    def describe(self) -> str:
        """``pid 4242 on host mini`` (for messages)."""
        return f"pid {self.pid} on host {self.hostname}"


def _pid_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` names a running process that started no later than ``started``."""
    if pid <= 0:  # os.kill(0, ...) would address our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to another user
    except OSError:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False  # exited, only not yet reaped by its parent
        if started is not None and process.create_time() > started + PID_REUSE_SLACK_S:
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        pass  # exists, but its details are hidden from us: count it as live
    return True


def read_marker(run_dir: Path) -> RunMarker | None:
    """The marker in ``run_dir``, or None when there is none.

    An unreadable marker (hand-edited, or from a future version) is logged and counts as none:
    it names no process anyone could wait for.
    """
    path = Path(run_dir) / MARKER_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return RunMarker(
            pid=int(document["pid"]), hostname=str(document["hostname"]),
            started_at=str(document["started_at"]), argv=[str(a) for a in document.get("argv", [])],
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s cannot be read (%s); taking it for a stale marker", path, exc)
        return None


def live_marker(run_dir: Path, now: float | None = None) -> RunMarker | None:
    """The marker in ``run_dir`` if its process may still be training, else None."""
    marker = read_marker(run_dir)
    return marker if marker is not None and marker.is_live(now) else None


def busy_message(run_dir: Path, marker: RunMarker) -> str:
    """The one line that refuses to train into a folder another process holds."""
    message = (
        f"{run_dir} is being trained by {marker.describe()} (since {marker.started_at}); "
        f"wait for it to finish or stop it"
    )
    if marker.on_this_host:
        return message + f" (Ctrl-C in its terminal, or kill {marker.pid})"
    return message + f" on {marker.hostname}; if it is not running there, delete {Path(run_dir) / MARKER_FILE}"


def claim_run(run_dir: Path) -> RunMarker:
    """Write a marker naming this process into ``run_dir``.

    A live marker of another process is refused before anything in the folder is touched; a
    stale one (its process gone) is replaced.

    Raises:
        RunBusyError: another live process holds the folder.
    """
    run_dir = Path(run_dir)
    held = live_marker(run_dir)
    if held is not None:  # refuse without creating even the lock file
        raise RunBusyError(busy_message(run_dir, held))
    try:
        with FileLock(str(run_dir / LOCK_FILE), timeout=LOCK_TIMEOUT_S):
            held = read_marker(run_dir)
            if held is not None:
                if held.is_live():
                    raise RunBusyError(busy_message(run_dir, held))
                log.info("replacing the stale marker of %s in %s (that process is gone)", held.describe(), run_dir)
            marker = RunMarker.for_this_process()
            atomic_write_json(run_dir / MARKER_FILE, marker.to_json())
            return marker
    except Timeout as exc:
        raise RunBusyError(
            f"could not lock {run_dir / LOCK_FILE} within {LOCK_TIMEOUT_S:.0f} s: another process is "
            "starting in this run folder; wait for it"
        ) from exc


def release_run(run_dir: Path, marker: RunMarker) -> None:
    """Remove ``run_dir``'s marker if it is still ``marker`` (never another process's)."""
    path = Path(run_dir) / MARKER_FILE
    if read_marker(run_dir) == marker:
        path.unlink(missing_ok=True)
