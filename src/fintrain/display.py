"""Formatting shared by every display (live panel, plain log, probe table, thermal-watch):
durations, sizes, sparklines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"

# Metric keys in the order a reader expects them (others follow alphabetically).
METRIC_ORDER = ("auc", "accuracy", "brier", "log_loss", "pos_rate", "mse", "mae", "dir_acc")
# Shares shown as percentages (pos_rate 0.0009921 reads as 0.10%, not 9.921e-04).
PERCENT_METRICS = frozenset({"pos_rate"})
# The task metrics a run's loss equals (BCE is the log loss, MSE the mse, when no pos_weight is set).
LOSS_TWINS = ("log_loss", "mse")


def sparkline(values: Sequence[float | None], low: float | None = None, high: float | None = None) -> str:
    """One block character per value, its height scaled between ``low`` and ``high``.

    The scale defaults to the values' own minimum and maximum; values outside a given scale sit
    at its floor or top. Missing and non-finite values (a diverged loss, a gap in a temperature
    trace) are shown as a space; a flat line sits mid-height.
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low = min(finite) if low is None else low
    high = max(finite) if high is None else high
    span = high - low
    top = len(SPARK_BLOCKS) - 1
    chars = []
    for v in values:
        if v is None or not math.isfinite(v):
            chars.append(" ")
        elif span <= 0:
            chars.append(SPARK_BLOCKS[top // 2])
        else:
            chars.append(SPARK_BLOCKS[min(max(round((v - low) / span * top), 0), top)])
    return "".join(chars)


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m 07s`` or ``1h 02m``; ``--`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_bytes(count: int | None) -> str:
    """``812 MiB``, ``1.25 GiB``; ``n/a`` when unknown."""
    if count is None:
        return "n/a"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {unit}"


def format_value(value: Any) -> str:
    """A metric value in four significant decimals, ``nan`` or ``-`` when missing."""
    if value is None:
        return "-"
    if isinstance(value, bool | str):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(number)
    if number != 0 and (abs(number) < 1e-3 or abs(number) >= 1e5):
        return f"{number:.3e}"
    return f"{number:.4f}"


def format_metric(name: str, value: Any) -> str:
    """A metric value as every display shows it: shares as percentages (``0.10%``), others in
    four decimals (:func:`format_value`)."""
    if name in PERCENT_METRICS and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{100 * value:.2f}%"
    return format_value(value)


def repeats_loss(metrics: Mapping[str, Any], loss: Any) -> str | None:
    """The metric among :data:`LOSS_TWINS` whose value is ``loss`` (to display precision), or None."""
    if not isinstance(loss, int | float) or not math.isfinite(loss):
        return None
    for name in LOSS_TWINS:
        value = metrics.get(name)
        if isinstance(value, int | float) and math.isclose(value, loss, rel_tol=1e-5, abs_tol=1e-9):
            return name
    return None


def shown_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Metric items in the usual order, each value once: ``loss`` is left out when it repeats the
    task's ``log_loss`` or ``mse`` (a run's test metrics hold both)."""
    twin = repeats_loss(metrics, metrics.get("loss"))
    return ordered_metrics({k: v for k, v in metrics.items() if not (k == "loss" and twin)})


def format_lr(lr: Any) -> str:
    """A learning rate in scientific notation (they span decades)."""
    try:
        return f"{float(lr):.2e}"
    except (TypeError, ValueError):
        return "-"


def ordered_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Metric items with the usual ones first, in the usual order."""
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    return sorted(metrics.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def val_metrics(record: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The ``val/<metric>`` items of an epoch record, in the usual order, without ``val/loss``
    (shown beside the training loss) and without the metric that merely repeats it."""
    found = {k.removeprefix("val/"): v for k, v in record.items() if k.startswith("val/") and k != "val/loss"}
    twin = repeats_loss(found, record.get("val/loss"))
    return ordered_metrics({k: v for k, v in found.items() if k != twin})


def epoch_label(number: Any) -> str:
    """An epoch number (records count epochs from 1), or ``-`` for none."""
    return str(int(number)) if isinstance(number, int) and not isinstance(number, bool) else "-"


def temperature_text(temp_c: Any) -> str:
    """``78.4 C`` or ``-``."""
    if temp_c is None:
        return "-"
    try:
        return f"{float(temp_c):.1f} C"
    except (TypeError, ValueError):
        return "-"
