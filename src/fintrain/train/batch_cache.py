"""The batch-size probe's results, cached per device, model config and data shape.

``fintrain probe-batch`` fills this cache and ``fintrain train --batch-size auto`` reads it; it
lives in ``train`` (below ``probe``) so that training reads it without importing the probe.

One JSON file per key under ``<cache>/probe/``, where ``<cache>`` is ``$FINTRAIN_CACHE_DIR`` or
the user's cache folder (``platformdirs.user_cache_dir("fintrain")``: ``~/Library/Caches/fintrain``
on macOS, ``~/.cache/fintrain`` on Linux). The file name is a hash of the key; the key is stored
inside too, so a file can be read and checked by hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import platformdirs
import torch

from fintrain.config import ModelConfig
from fintrain.storage import atomic_write_json, utc_now
from fintrain.device import device_label

log = logging.getLogger(__name__)

CACHE_ENV = "FINTRAIN_CACHE_DIR"
CACHE_SCHEMA = 1

# A safe batch size for `train --batch-size auto` when no probe result is cached: small enough
# for the 200m budget on a 16 GB laptop, large enough that a 2m model is not starved.
DEFAULT_BATCH_SIZE = 64


class ProbeOutcome(Protocol):
    """What the cache keeps of a probe's result (``fintrain.probe.ProbeResult``)."""

    @property
    def recommended(self) -> int | None: ...

    def to_json(self) -> dict[str, Any]: ...


def cache_dir() -> Path:
    """``$FINTRAIN_CACHE_DIR``, else the user's cache folder for fintrain."""
    override = os.environ.get(CACHE_ENV, "").strip()
    return Path(override) if override else Path(platformdirs.user_cache_dir("fintrain"))


def cache_key(device: torch.device, model_cfg: ModelConfig, precision: str = "fp32") -> dict[str, Any]:
    """What a cached result depends on: the device's name, the full model config (which holds
    the data shape: context_len and n_channels), the training precision (bf16 autocast holds
    larger batches and runs at another speed) and the torch version (kernels and allocators
    change between releases)."""
    return {
        "schema": CACHE_SCHEMA,
        "device": device_label(device),
        "model": model_cfg.model_dump(mode="json"),
        "precision": precision,
        "torch": torch.__version__,
    }


def cache_path(device: torch.device, model_cfg: ModelConfig, precision: str = "fp32") -> Path:
    """The file a result for this device, model config and precision lives in."""
    canonical = json.dumps(cache_key(device, model_cfg, precision), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]
    return cache_dir() / "probe" / f"{digest}.json"


def store_result(
    device: torch.device, model_cfg: ModelConfig, result: ProbeOutcome, n_train: int | None, precision: str = "fp32"
) -> Path | None:
    """Cache a probe's result; returns the file, or None when nothing fit (nothing to reuse)."""
    if result.recommended is None:
        return None
    path = cache_path(device, model_cfg, precision)
    atomic_write_json(
        path,
        {
            "key": cache_key(device, model_cfg, precision),
            "created_at": utc_now(),
            "n_train": n_train,
            "result": result.to_json(),
        },
    )
    return path


def read_entry(device: torch.device, model_cfg: ModelConfig, precision: str = "fp32") -> dict[str, Any] | None:
    """The cached document for this key, or None (missing, unreadable or not this key)."""
    path = cache_path(device, model_cfg, precision)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        # A damaged cache costs a default batch size, never a failed training run.
        log.warning("ignoring unreadable probe cache %s: %s", path, exc)
        return None
    if not isinstance(document, dict) or document.get("key") != cache_key(device, model_cfg, precision):
        log.warning("ignoring probe cache %s: it was written for another key", path)
        return None
    return document


def lookup_batch_size(
    device: torch.device, model_cfg: ModelConfig, n_train: int | None = None, precision: str = "fp32"
) -> int | None:
    """The cached recommended batch size for this device, model config, data shape and precision.

    Args:
        device: the device training will run on.
        model_cfg: the model exactly as training builds it (context_len and n_channels are the
            data shape).
        n_train: the training set's size; a cached size above it is lowered to it (a batch
            cannot hold more samples than the training set has).
        precision: fp32 or bf16, as training will run (a bf16 probe says nothing about fp32).

    Returns:
        The batch size, or None when no probe result is cached (run ``fintrain probe-batch``;
        ``DEFAULT_BATCH_SIZE`` is the fallback).
    """
    document = read_entry(device, model_cfg, precision)
    if document is None:
        return None
    result = document.get("result")
    recommended = result.get("recommended") if isinstance(result, dict) else None
    if not isinstance(recommended, int) or isinstance(recommended, bool) or recommended < 1:
        log.warning("ignoring probe cache for %s: no valid recommendation", device_label(device))
        return None
    if n_train is not None and n_train >= 1:
        return min(recommended, n_train)
    return recommended
