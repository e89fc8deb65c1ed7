"""Files on disk: atomic writes, md5 sums and the versioned manifests.

Every file goes to a temporary file in the same folder and is then ``os.replace``d, so a crash
or a full disk never leaves a half-written parquet, manifest or checkpoint behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from fintrain.errors import ManifestError

SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 60.0


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file private (0600); give it the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, document: Any) -> None:
    """Write a JSON document (indented, trailing newline) atomically."""
    atomic_write_text(path, json.dumps(document, indent=2, default=str) + "\n")


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def utc_now() -> str:
    """The current UTC time in ISO 8601, seconds precision."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


class Manifest:
    """A folder's ``manifest.json``: ``{"schema_version": 1, "entries": [...]}``.

    Entries are appended, never rewritten; the latest entry for a path is the current one.
    Updates hold a file lock, so two processes appending at once lose nothing.
    """

    def __init__(self, path: Path, root: Path):
        self.path = Path(path)
        self.root = Path(root)
        self._lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)

    def read(self) -> list[dict[str, Any]]:
        """All entries, oldest first; an absent manifest has none."""
        if not self.path.exists():
            return []
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(
                f"{self.path} is not valid JSON ({exc}); restore it or delete it and re-import"
            ) from exc
        if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
            raise ManifestError(f"{self.path} has no 'entries' list; restore it or delete it")
        version = document.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"{self.path} has schema_version {version!r}; this fintrain reads {SCHEMA_VERSION}"
            )
        return document["entries"]

    def current(self) -> list[dict[str, Any]]:
        """The latest entry for each path, in the order the paths first appeared."""
        latest: dict[str, dict[str, Any]] = {}
        for entry in self.read():
            latest[entry["path"]] = entry
        return list(latest.values())

    def latest(self, key: str, value: Any) -> dict[str, Any] | None:
        """The newest entry whose ``key`` equals ``value``, or None."""
        for entry in reversed(self.read()):
            if entry.get(key) == value:
                return entry
        return None

    def append(self, entry: dict[str, Any] | Callable[[list[dict[str, Any]]], dict[str, Any]]) -> dict[str, Any]:
        """Append an entry under the lock; a callable gets the current entries (for versions)."""
        try:
            with self._lock:
                entries = self.read()
                new = entry(entries) if callable(entry) else entry
                atomic_write_json(
                    self.path, {"schema_version": SCHEMA_VERSION, "entries": [*entries, new]}
                )
                return new
        except Timeout as exc:
            raise ManifestError(
                f"could not lock {self.path} within {LOCK_TIMEOUT_S:.0f} s; is another fintrain "
                "writing? If not, delete the stale .lock file"
            ) from exc

    def resolve(self, entry: dict[str, Any]) -> Path:
        """The file an entry names (its path is relative to the data folder)."""
        return self.root / entry["path"]
