"""``equity.png``: equity curves of the model, the learned baselines and buy-and-hold on the test dates.

Readable printed in grey: curves differ by line style, not colour alone, and each is labelled
with its Sharpe ratio. Built on ``matplotlib.figure.Figure`` directly (no pyplot), so drawing
changes no global backend state and works without a display.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fintrain.evaluate.trading import Strategy, sharpe
from fintrain.storage import atomic_path

DPI = 100
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
GREYS = ("black", "0.3", "0.45", "0.6")


def equity_plot(curves: Mapping[str, Strategy], path: Path, title: str) -> Path:
    """Draw each strategy's equity prod(1 + r) over its dates to ``path`` (1200 x 500 px PNG)."""
    fig = Figure(figsize=(12.0, 5.0), dpi=DPI)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.9)
    ax = fig.subplots()
    for i, (name, strategy) in enumerate(curves.items()):
        equity = np.cumprod(1.0 + strategy.returns)
        value = sharpe(strategy.returns)
        ax.plot(strategy.dates, equity, linestyle=LINESTYLES[i % len(LINESTYLES)], color=GREYS[i % len(GREYS)],
                linewidth=2.0 if i == 0 else 1.3, label=f"{name} (Sharpe {value:.2f})")
    ax.axhline(1.0, color="0.75", linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel("equity (start = 1)")
    ax.grid(True, color="0.9")
    ax.legend(loc="upper left", frameon=False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path
