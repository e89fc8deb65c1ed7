"""Atomic writes and the manifest's cross-process lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from fintrain.errors import ManifestError
from fintrain.storage import Manifest, atomic_path, atomic_write_json


def test_manifest_appends_and_reports_current(tmp_path):
    m = Manifest(tmp_path / "raw" / "manifest.json", root=tmp_path)
    assert m.read() == [] and m.current() == []
    m.append({"path": "raw/A.parquet", "md5": "1"})
    m.append({"path": "raw/B.parquet", "md5": "2"})
    m.append({"path": "raw/A.parquet", "md5": "3"})
    assert [e["md5"] for e in m.current()] == ["3", "2"]
    assert m.latest("path", "raw/A.parquet")["md5"] == "3"
    document = json.loads(m.path.read_text())
    assert document["schema_version"] == 1 and len(document["entries"]) == 3


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
            m.append({"path": f"{name}-{i}", "md5": str(i)})
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
