"""The running.json marker: when its process counts as live, and claiming a folder with it."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from fintrain.train.marker import (
    FOREIGN_LIVE_S,
    LOCK_FILE,
    MARKER_FILE,
    RunBusyError,
    claim_run,
    live_marker,
    read_marker,
    release_run,
)


def test_own_process_is_live_and_a_reaped_one_is_not(tmp_path, write_marker, dead_pid):
    assert write_marker(tmp_path / "a", os.getpid()).is_live()
    assert not write_marker(tmp_path / "b", dead_pid).is_live()
    assert live_marker(tmp_path / "a") is not None and live_marker(tmp_path / "b") is None
    assert live_marker(tmp_path / "none") is None


def test_a_recycled_pid_is_not_taken_for_the_marker_s_process(tmp_path, write_marker):
    # This process exists, but it started long after a marker written in 2001.
    assert not write_marker(tmp_path, os.getpid(), started_at="2001-09-09T01:46:40+00:00").is_live()


def test_an_exited_but_unreaped_process_is_not_live(tmp_path, write_marker):
    proc = subprocess.Popen([sys.executable, "-c", ""])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, 0)  # signals still reach a zombie: os.kill alone would call it alive
        assert not write_marker(tmp_path, proc.pid).is_live()
    finally:
        proc.wait()


def test_another_host_s_marker_is_live_until_the_bound(tmp_path, write_marker):
    marker = write_marker(tmp_path, 1, hostname="some-other-host.example", started_at="2026-01-01T00:00:00+00:00")
    started = marker.started_s()
    assert marker.is_live(now=started + FOREIGN_LIVE_S - 60)
    assert not marker.is_live(now=started + FOREIGN_LIVE_S + 60)


def test_an_unreadable_marker_counts_as_none(tmp_path, caplog):
    (tmp_path / MARKER_FILE).write_text('{"pid": ')
    assert read_marker(tmp_path) is None
    assert "cannot be read" in caplog.text


def test_claim_refuses_a_live_marker_without_touching_the_folder(tmp_path, write_marker):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_marker(tmp_path, sleeper.pid)
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        with pytest.raises(RunBusyError) as refused:
            claim_run(tmp_path)
        message = str(refused.value)
        assert f"pid {sleeper.pid} on host {socket.gethostname()}" in message
        assert "wait for it to finish or stop it" in message and "\n" not in message
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # not even a lock file
    finally:
        sleeper.kill()
        sleeper.wait()


def test_claim_replaces_a_stale_marker_and_release_removes_only_its_own(tmp_path, caplog, write_marker, dead_pid):
    stale = write_marker(tmp_path, dead_pid)
    with caplog.at_level(logging.INFO, logger="fintrain.train.marker"):
        mine = claim_run(tmp_path)
    assert f"replacing the stale marker of {stale.describe()}" in caplog.text
    document = json.loads((tmp_path / MARKER_FILE).read_text())
    assert document["pid"] == os.getpid() and document["hostname"] == socket.gethostname()
    assert document["argv"] == sys.argv and read_marker(tmp_path) == mine
    assert not list(tmp_path.glob(f".{MARKER_FILE}.*"))  # written atomically: no temp file left
    # A marker some other process put there since is not ours to remove.
    other = write_marker(tmp_path, os.getppid())
    release_run(tmp_path, mine)
    assert read_marker(tmp_path) == other
    (tmp_path / MARKER_FILE).write_text(json.dumps(mine.to_json()))
    release_run(tmp_path, mine)
    assert not (tmp_path / MARKER_FILE).exists() and (tmp_path / LOCK_FILE).exists()
