"""Run one fintrain write in this process and kill it (``os._exit``) at its N-th write step.

    python tests/fault_injection.py N ACTION ARGS...    (or ``killed_run(N, ACTION, ARGS)``)

``storage.write_step`` is the seam: every atomic write calls it at each step (temporary file
created, written, fsynced, renamed, folder fsynced). With N = 0 nothing is killed and the
number of steps is printed. The process exits with KILLED when it was killed.

Actions:
    import DATA_DIR FILE TICKER      fintrain data import
    fetch DATA_DIR TICKER            fintrain data fetch from Yahoo, through the network seams
                                     (``sources.yahoo_history`` answering with recorded data,
                                     ``sources.resolve_host`` resolving without a DNS query)
    features DATA_DIR TICKER TIER    fintrain features build
    checkpoint FOLDER                save_checkpoint of last.pt, one step past the one there
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

KILLED = 86
# Each kill needs a fresh process; a fork server that has imported these already starts one in
# milliseconds instead of the seconds that importing polars and torch take.
PRELOAD = ["fault_injection", "fintrain.data", "fintrain.features", "fintrain.train.checkpoint", "torch", "pandas", "bokeh_sampledata.stocks"]


def recorded_yahoo(ticker, start, end):
    """Yahoo's answer as yfinance returns it, from bokeh-sampledata's recorded MSFT prices."""
    import pandas as pd
    from bokeh_sampledata import stocks

    d = stocks.MSFT
    frame = pd.DataFrame(
        {"Open": d["open"], "High": d["high"], "Low": d["low"], "Close": d["close"], "Volume": d["volume"]},
        index=pd.DatetimeIndex(pd.to_datetime(d["date"]), name="Date"),
    )
    if end is not None:
        frame = frame[frame.index <= pd.Timestamp(end)]
    return frame


def run(action: str, args: list[str]) -> None:
    """Perform one action (see the module docstring)."""
    if action == "import":
        from fintrain.data import import_file

        import_file(Path(args[0]), Path(args[1]), args[2], min_rows=250)
    elif action == "fetch":
        import datetime as dt

        from fintrain.config import DataConfig
        from fintrain.data import fetch, sources

        sources.yahoo_history = recorded_yahoo
        sources.resolve_host = lambda host: None  # no DNS query either
        end = dt.date.fromisoformat(args[2]) if len(args) > 2 else None
        fetch(Path(args[0]), DataConfig(ticker=args[1], source="yahoo", end=end))
    elif action == "features":
        from fintrain.features import ensure_features

        ensure_features(Path(args[0]), args[1], args[2])
    elif action == "checkpoint":
        save_next_checkpoint(Path(args[0]))
    else:
        raise SystemExit(f"unknown action {action}")


def save_next_checkpoint(folder: Path) -> int:
    """Save ``folder/last.pt`` one step past the one there (step 0 when none); return the step."""
    import torch

    from fintrain.train.checkpoint import LAST, load_checkpoint, save_checkpoint

    path = folder / LAST
    step = load_checkpoint(path)["step"] + 1 if path.is_file() else 0
    torch.manual_seed(step)
    model = torch.nn.Linear(16, 4)
    save_checkpoint(path, {"model": model.state_dict(), "state": {"step": step}, "step": step})
    return step


def main(argv: list[str]) -> None:
    kill_at = int(argv[0])
    from fintrain import storage

    steps = 0

    def hook(step: str, path: Path) -> None:
        nonlocal steps
        steps += 1
        if steps == kill_at:
            os._exit(KILLED)

    storage.write_step = hook
    run(argv[1], argv[2:])
    print(steps)


def killed_run(kill_at: int, action: str, args: list[str], timeout_s: float = 120) -> int:
    """Run ``main`` in a process forked from a preloaded server; return its exit code."""
    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    process = context.Process(target=main, args=([str(kill_at), action, *args],))
    process.start()
    process.join(timeout_s)
    if process.exitcode is None:
        process.kill()
        raise TimeoutError(f"{action} {args} did not finish in {timeout_s} s")
    return process.exitcode


if __name__ == "__main__":
    main(sys.argv[1:])
