"""Atomic writes and the manifest's cross-process lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from fintrain.errors import ManifestError
from fintrain.storage import Manifest, atomic_path, atomic_write_bytes, atomic_write_json


def test_manifest_appends_and_reports_current(tmp_path):
    m = Manifest(tmp_path / "raw" / "manifest.json", root=tmp_path)
    assert m.read() == [] and m.current() == []
    m.append({"dataset": "A", "path": "raw/A/1.parquet", "md5": "1"})
    m.append({"dataset": "B", "path": "raw/B/2.parquet", "md5": "2"})
    m.append({"dataset": "A", "path": "raw/A/3.parquet", "md5": "3"})
    assert [e["md5"] for e in m.current()] == ["3", "2"]
    assert m.latest("dataset", "A")["md5"] == "3"
    document = json.loads(m.path.read_text())
    assert document["schema_version"] == 2 and len(document["entries"]) == 3


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        Manifest(path, root=tmp_path).read()


def test_two_processes_appending_lose_nothing(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from fintrain.storage import Manifest
        root, name = Path(sys.argv[1]), sys.argv[2]
        m = Manifest(root / "manifest.json", root=root)
        for i in range(40):
            m.append({"dataset": name, "path": f"{name}-{i}", "md5": str(i)})
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), name]) for name in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    entries = Manifest(tmp_path / "manifest.json", root=tmp_path).read()
    assert len(entries) == 80
    assert {e["path"] for e in entries} == {f"{n}-{i}" for n in "ab" for i in range(40)}


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_write_cut_short_by_a_full_disk_leaves_the_old_file_whole(tmp_path):
    """The file-size limit makes the write fail after 4 KiB, as a full disk would mid-write."""
    target = tmp_path / "data.parquet"
    atomic_write_bytes(target, b"old" * 1000)
    script = textwrap.dedent(
        """
        import resource, signal, sys
        from pathlib import Path
        from fintrain.storage import atomic_write_bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            atomic_write_bytes(Path(sys.argv[1]), b"new" * 100_000)
        except OSError:
            sys.exit(7)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 7, done.stderr
    assert target.read_bytes() == b"old" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["data.parquet"]


def test_a_reader_of_the_old_file_never_sees_the_new_bytes(tmp_path):
    """The new content goes to a new file that replaces the name; an open reader keeps the old one."""
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"a" * 10_000)
    with open(target, "rb") as reader:
        atomic_write_bytes(target, b"b" * 20_000)
        assert reader.read() == b"a" * 10_000
    assert target.read_bytes() == b"b" * 20_000
