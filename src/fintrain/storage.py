"""Files on disk: atomic writes, md5 sums and the versioned manifests.

Every file goes to a temporary file in the same folder, is fsynced and is then ``os.replace``d,
so a crash or a full disk never leaves a half-written parquet, manifest or checkpoint behind.

A data folder's manifest (``raw/manifest.json``, ``processed/manifest.json``) lists every stored
version of every dataset; each version is its own file named by its md5
(``raw/SPY/<md5>.parquet``). ``Manifest.store`` writes the version's file completely before
it appends the entry, both under the manifest's lock, and reads and validates the manifest
before it writes anything: a crash at any point leaves the previous current version intact,
with at most an untracked file beside it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock, Timeout

from fintrain.errors import ManifestError, StorageError

SCHEMA_VERSION = 2
# Schema 1 is the layout before versioned storage (one file per dataset, overwritten in place):
# it still reads, and is migrated on its first write.
READABLE_SCHEMAS = (1, SCHEMA_VERSION)
LOCK_TIMEOUT_S = 60.0
# In a run folder: the md5 of the raw and feature versions the run trained on, which keeps them
# from `fintrain data prune` and lets `--resume` find them after a re-import.
RUN_DATA_FILE = "data.json"
_MD5 = re.compile(r"[0-9a-f]{32}")


def _no_fault(step: str, path: Path) -> None:
    """The production write-step hook: nothing happens between steps."""


# Called at every step of every atomic write ("created", "written", "synced", "replaced",
# "folder synced") with the final path. A seam for fault-injection tests, which replace it with
# a hook that kills the process at one chosen step.
write_step: Callable[[str, Path], None] = _no_fault


def check_writable(folder: Path, option: str) -> None:
    """Refuse a folder that is a file, or inside a file, or read-only, before any work is done.

    ``option`` names where the folder came from (``--data-dir``, ``--runs-dir``) for the message.
    """
    folder = Path(folder)
    for existing in (folder, *folder.parents):
        if existing.exists():
            if not existing.is_dir():
                raise StorageError(f"{option} {folder}: {existing} is a file, not a folder; pick another {option}")
            if not os.access(existing, os.W_OK | os.X_OK):
                raise StorageError(
                    f"{option} {folder}: {existing} is read-only; make it writable or pick another {option}"
                )
            return


@contextlib.contextmanager
def refused_writes(folder: Path, option: str) -> Iterator[None]:
    """Turn the operating system's refusal to write (permissions, a read-only disk) into one line."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
            raise
        raise StorageError(
            f"cannot write in {option} {folder}: {exc.strerror} ({exc.filename}); make it writable or pick "
            f"another {option}"
        ) from exc


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file private (0600); give it the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    write_step("created", path)
    return tmp


def _sync(tmp: Path, path: Path) -> None:
    write_step("written", path)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    write_step("synced", path)


def _commit(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    write_step("replaced", path)
    _fsync_folder(path.parent)
    write_step("folder synced", path)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        yield tmp
        _sync(tmp, path)
        _commit(tmp, path)
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


def version_path(folder: str, md5: str, suffix: str = ".parquet") -> str:
    """The data-folder-relative path of one version: ``raw/SPY/<md5>.parquet``."""
    return f"{folder}/{md5}{suffix}"


def is_version_path(path: str) -> bool:
    """True for a versioned file's path (its name is its md5), False for the old layout."""
    return _MD5.fullmatch(PurePosixPath(path).stem) is not None


def legacy_version_path(path: str, md5: str) -> str:
    """Where an old-layout file goes when migrated: ``raw/SPY.parquet`` -> ``raw/SPY/<md5>.parquet``."""
    old = PurePosixPath(path)
    return version_path((old.parent / old.stem).as_posix(), md5, old.suffix)


# Keys every manifest entry has, and their types.
_REQUIRED = {"dataset": str, "path": str, "md5": str}


def _check_entry(manifest: Path, index: int, entry: Any) -> None:
    where = f"{manifest} entry {index + 1}"
    fix = "restore the manifest from a backup, or remove that entry"
    if not isinstance(entry, dict):
        raise ManifestError(f"{where} is {type(entry).__name__}, not an object; {fix}")
    for key, kind in _REQUIRED.items():
        if key not in entry:
            raise ManifestError(f"{where} has no {key!r}; {fix}")
        if not isinstance(entry[key], kind):
            raise ManifestError(
                f"{where} has {key!r} of type {type(entry[key]).__name__}, expected a string; {fix}"
            )
    path = PurePosixPath(entry["path"])
    if path.is_absolute() or ".." in path.parts or not entry["path"]:
        raise ManifestError(f"{where} has path {entry['path']!r} outside the data folder; {fix}")
    if "rows" in entry and (not isinstance(entry["rows"], int) or isinstance(entry["rows"], bool)):
        raise ManifestError(f"{where} has 'rows' of type {type(entry['rows']).__name__}, expected an integer; {fix}")


@dataclass(frozen=True)
class StoredVersion:
    """What ``Manifest.store`` wrote: the entry, and whether the folder was migrated first."""

    entry: dict[str, Any]
    migrated: bool


class Manifest:
    """A folder's ``manifest.json``: ``{"schema_version": 2, "entries": [...]}``.

    Entries are appended, never rewritten (a migration from schema 1 rewrites them once); the
    newest entry of a dataset is its current version. Writes hold a file lock, so two processes
    storing at once lose nothing and never pair an entry with the other's file.
    """

    def __init__(self, path: Path, root: Path):
        self.path = Path(path)
        self.root = Path(root)
        self._lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)

    def _document(self) -> tuple[int, list[dict[str, Any]]]:
        """The schema version and the validated entries; an absent manifest is empty."""
        if not self.path.exists():
            return SCHEMA_VERSION, []
        if not self.path.is_file():
            raise ManifestError(f"{self.path} is not a file; move it away and re-import")
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(
                f"{self.path} is not valid JSON ({exc}); restore it or delete it and re-import"
            ) from exc
        except OSError as exc:
            raise ManifestError(f"cannot read {self.path} ({exc.strerror}); check its permissions") from exc
        if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
            raise ManifestError(f"{self.path} has no 'entries' list; restore it or delete it")
        version = document.get("schema_version")
        if version not in READABLE_SCHEMAS:
            raise ManifestError(
                f"{self.path} has schema_version {version!r}; this fintrain reads "
                f"{', '.join(map(str, READABLE_SCHEMAS))}"
            )
        for index, entry in enumerate(document["entries"]):
            _check_entry(self.path, index, entry)
        return version, document["entries"]

    @property
    def schema_version(self) -> int:
        """The schema the file on disk has (the current one when absent)."""
        return self._document()[0]

    def read(self) -> list[dict[str, Any]]:
        """All entries, oldest first."""
        return self._document()[1]

    def current(self) -> list[dict[str, Any]]:
        """The newest entry of each dataset, in the order the datasets first appeared."""
        latest: dict[str, dict[str, Any]] = {}
        for entry in self.read():
            latest[entry["dataset"]] = entry
        return list(latest.values())

    def latest(self, key: str, value: Any) -> dict[str, Any] | None:
        """The newest entry whose ``key`` equals ``value``, or None."""
        for entry in reversed(self.read()):
            if entry.get(key) == value:
                return entry
        return None

    def versions(self, dataset: str) -> list[dict[str, Any]]:
        """Every entry of one dataset, oldest first."""
        return [e for e in self.read() if e["dataset"] == dataset]

    def find(self, dataset: str, md5: str) -> dict[str, Any] | None:
        """The newest entry of ``dataset`` with content ``md5`` whose file is kept, or None."""
        for entry in reversed(self.versions(dataset)):
            if entry["md5"] == md5 and entry.get("kept", True):
                return entry
        return None

    def resolve(self, entry: dict[str, Any]) -> Path:
        """The file an entry names (its path is relative to the data folder)."""
        return self.root / entry["path"]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the manifest's lock (a lock file beside it)."""
        check_writable(self.path.parent, "--data-dir")
        try:
            with refused_writes(self.root, "--data-dir"):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock.acquire()
        except Timeout as exc:
            raise ManifestError(
                f"could not lock {self.path} within {LOCK_TIMEOUT_S:.0f} s; is another fintrain "
                "writing? If not, delete the stale .lock file"
            ) from exc
        try:
            with refused_writes(self.root, "--data-dir"):
                yield
        finally:
            self._lock.release()

    def rewrite(self, entries: list[dict[str, Any]]) -> None:
        """Replace the manifest's entries (atomically); call under ``locked()``."""
        atomic_write_json(self.path, {"schema_version": SCHEMA_VERSION, "entries": entries})

    def append(self, entry: dict[str, Any] | Callable[[list[dict[str, Any]]], dict[str, Any]]) -> dict[str, Any]:
        """Append an entry under the lock; a callable gets the current entries (for versions)."""
        self.read()  # a bad manifest stops us before the lock file is created
        with self.locked():
            entries = self.migrate()
            new = entry(entries) if callable(entry) else entry
            self.rewrite([*entries, new])
            return new

    def store(
        self,
        folder: str,
        write: Callable[[Path], None],
        entry: Callable[[list[dict[str, Any]], str, str], dict[str, Any]],
        suffix: str = ".parquet",
    ) -> StoredVersion:
        """Store a new version of a dataset: its file first, then its manifest entry.

        Args:
            folder: the dataset's folder, relative to the data folder (``raw/SPY``).
            write: writes the version's content to the path it is given.
            entry: builds the manifest entry from the existing entries, the file's md5 and its
                data-folder-relative path.
            suffix: the file's suffix.

        Returns:
            The appended entry, and whether an old-layout manifest was migrated first.
        """
        self.read()  # validated before anything is written
        with self.locked():
            migrated = self.schema_version != SCHEMA_VERSION and self.path.exists()
            entries = self.migrate()
            md5, relative = self._write_version(folder, write, suffix)
            new = entry(entries, md5, relative)
            self.rewrite([*entries, new])
            return StoredVersion(new, migrated)

    def _write_version(self, folder: str, write: Callable[[Path], None], suffix: str) -> tuple[str, str]:
        """Write one version's file: temporary file, fsync, then rename to its md5 name."""
        target_dir = self.root / folder
        placeholder = target_dir / f"new{suffix}"
        tmp = _temp_beside(placeholder)
        try:
            write(tmp)
            _sync(tmp, placeholder)
            md5 = md5_file(tmp)
            relative = version_path(folder, md5, suffix)
            _commit(tmp, self.root / relative)
            return md5, relative
        finally:
            tmp.unlink(missing_ok=True)

    def migrate(self) -> list[dict[str, Any]]:
        """The entries, migrating an old-layout (schema 1) folder first; call under the lock.

        Each old-layout file is copied to its versioned name and the manifest rewritten before
        the old file is removed, so a crash in between leaves both readable. Entries whose file
        the old layout had already overwritten are kept as history, marked ``"kept": false``.
        A file that no longer matches its entry is copied under its own md5, untracked.
        """
        version, entries = self._document()
        if version == SCHEMA_VERSION:
            return entries
        latest: dict[str, int] = {e["path"]: i for i, e in enumerate(entries)}
        migrated: list[dict[str, Any]] = []
        moved: list[Path] = []
        for index, entry in enumerate(entries):
            if is_version_path(entry["path"]):
                migrated.append(entry)
                continue
            new_path = legacy_version_path(entry["path"], entry["md5"])
            old = self.root / entry["path"]
            kept = False
            if latest[entry["path"]] == index and old.is_file():
                actual = md5_file(old)
                target = self.root / legacy_version_path(entry["path"], actual)
                with atomic_path(target) as tmp:
                    shutil.copyfile(old, tmp)
                moved.append(old)
                kept = actual == entry["md5"]
            migrated.append({**entry, "path": new_path, **({} if kept else {"kept": False})})
        self.rewrite(migrated)
        for old in moved:
            old.unlink(missing_ok=True)
        return migrated

    def tracked_paths(self) -> set[str]:
        """Every path an entry names (kept or not)."""
        return {e["path"] for e in self.read()}
