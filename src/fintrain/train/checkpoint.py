"""Checkpoints: atomic writes of plain dicts that ``torch.load(weights_only=True)`` reads.

Each checkpoint carries a checksum of its content (every tensor's bytes, dtype and shape, and
every plain value), checked on load: a flipped bit in a weight is a one-line error naming the
file, not a run that resumes into NaN. Saving ``last.pt`` keeps the one it replaces as
``last.prev.pt``, which a user can go back to when ``last.pt`` is damaged.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from fintrain.errors import CheckpointError
from fintrain.storage import atomic_path, write_step

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
LAST_PREV = "last.prev.pt"
BEST = "best.pt"
CHECKSUM = "checksum"


def content_checksum(value: Any) -> str:
    """sha256 of a checkpoint's content: tensors by dtype, shape and bytes, the rest by repr."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            if key == CHECKSUM:
                continue
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{value!r}".encode())


def non_finite_tensors(state: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors in a state dict that hold NaN or infinity."""
    return [
        name for name, t in state.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint with its checksum atomically: a crash leaves the previous one intact.

    Saving ``last.pt`` first keeps the current one as ``last.prev.pt`` (a hard link renamed
    into place, so the old ``last.pt`` itself is never touched).

    Raises:
        CheckpointError: the model's weights hold NaN or infinity (nothing is written).
    """
    path = Path(path)
    bad = non_finite_tensors(state.get("model", {}))
    if bad:
        raise CheckpointError(
            f"not saving {path.name}: the model's weights are not finite ({', '.join(bad[:3])}); "
            f"the checkpoint on disk is the last good one"
        )
    document = {**state, CHECKSUM: content_checksum(state)}
    if path.name == LAST and path.is_file():
        _keep_previous(path, path.with_name(LAST_PREV))
    with atomic_path(path) as tmp:
        torch.save(document, tmp)


def _keep_previous(last: Path, previous: Path) -> None:
    """Make ``previous`` a copy of ``last`` (a hard link where the file system allows)."""
    with atomic_path(previous) as tmp:
        tmp.unlink()
        try:
            os.link(last, tmp)
        except OSError:
            tmp.write_bytes(last.read_bytes())
    write_step("kept previous", previous)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU and check its checksum.

    Raises:
        CheckpointError: the file is missing, damaged, altered since it was written, or not a
            fintrain checkpoint; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files; its advice does not apply
        raise CheckpointError(
            f"{path} is corrupt or not a fintrain checkpoint (it does not load: {type(exc).__name__})"
        ) from None
    if not isinstance(document, dict) or "model" not in document or "state" not in document:
        raise CheckpointError(f"{path} is not a fintrain checkpoint (no model and training state in it)")
    expected = document.pop(CHECKSUM, None)
    if expected is None:
        log.warning("%s has no checksum (written before fintrain checked them); its content is not verified", path)
        return document
    if content_checksum(document) != expected:
        raise CheckpointError(f"{path} is corrupt: its content does not match its checksum (a damaged or altered file)")
    return document
