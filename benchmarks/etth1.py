"""Reproduce PatchTST's ETTh1 result with fintrain's model (the reference protocol, whole test set).

The protocol is the reference code's (``PatchTST_supervised``, see ``../shared/REFERENCE.md``):
12/4/4-month train/validation/test borders on hourly rows, a StandardScaler fitted on the
training rows only, context 336, patch 16, stride 8, 3 layers, 4 heads, d_model 16, d_ff 128,
dropout 0.3, RevIN without affine, residual attention, Adam at 1e-4, MSE loss, batch 128 with
the last incomplete training batch dropped, seed 2021, and the reference's learning-rate
schedule. The best-validation weights are reloaded and scored on **every** test window (the
reference drops the last incomplete test batch).

Departures, both for time: the reference trains 100 epochs with no early stopping; here
training stops after ``--patience`` epochs without a better validation loss or after
``--max-minutes`` (the learning rate decays by 0.9 per epoch, so late epochs barely move the
weights). And the reference's first epoch runs at 1/25 of the learning rate by accident (see
``lr_at``); here it runs at the full rate.

Usage::

    python benchmarks/etth1.py --csv ../shared/data/ETTh1.csv [--horizon 96] [--json]

The script knows nothing about ETTh1 beyond the 12/4/4-month split of hourly rows and a first
date column, so it runs unchanged on ETTh2.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from fintrain.model import ModelConfig, PatchTST, count_parameters

HOURS_PER_MONTH = 30 * 24
# Published PatchTST/42 figures at each horizon (drop-last test set), Table 3 of the paper.
PAPER = {96: (0.375, 0.399), 192: (0.414, 0.421), 336: (0.431, 0.436), 720: (0.449, 0.466)}
# The same scripts scored on the whole test set, as reported by the FITS authors (MSE only).
PAPER_WHOLE_TEST_MSE = {96: 0.385}


def load_splits(csv: Path, context_len: int) -> dict[str, torch.Tensor]:
    """Scaled float32 (rows, channels) series for train, val and test, as the reference cuts them.

    Validation and test start ``context_len`` rows before their border so their first window's
    target begins exactly at the border.
    """
    frame = pl.read_csv(csv)
    values = frame.drop(frame.columns[0]).to_numpy().astype(np.float64)  # (T, C)
    train_end = 12 * HOURS_PER_MONTH
    val_end = train_end + 4 * HOURS_PER_MONTH
    test_end = val_end + 4 * HOURS_PER_MONTH
    if len(values) < test_end:
        raise SystemExit(f"{csv} has {len(values)} rows; the 12/4/4-month split needs {test_end}")
    train = values[:train_end]
    # StandardScaler on the training rows only (population std, as sklearn's).
    mean, std = train.mean(axis=0), train.std(axis=0)
    scaled = ((values - mean) / std).astype(np.float32)
    borders = {
        "train": (0, train_end),
        "val": (train_end - context_len, val_end),
        "test": (val_end - context_len, test_end),
    }
    return {name: torch.from_numpy(scaled[a:b].copy()) for name, (a, b) in borders.items()}


def windows(series: torch.Tensor, context_len: int, horizon: int) -> torch.Tensor:
    """All (context + horizon)-row windows of a (T, C) series, as a zero-copy (W, C, L+H) view."""
    return series.unfold(0, context_len + horizon, 1)


def batch(wins: torch.Tensor, idx: torch.Tensor, context_len: int) -> tuple[torch.Tensor, ...]:
    """Gather windows ``idx``; returns inputs (B, L, C) and targets (B, H, C)."""
    w = wins[idx].transpose(1, 2)  # (B, L+H, C)
    return w[:, :context_len], w[:, context_len:]


def lr_at(epoch: int, base_lr: float) -> float:
    """The learning rate of a (0-based) epoch: base_lr for three epochs, then x0.9 per epoch.

    This is REFERENCE.md's schedule (``lradj=type3``). The reference code also builds an unused
    OneCycleLR whose constructor sets the first epoch's rate to base_lr / 25, so there the first
    epoch barely moves the weights and the decay starts an epoch later; that epoch is not
    repeated here, because the run has to fit in 20 minutes of a 2-core CPU.
    """
    return base_lr * 0.9 ** max(0, epoch - 2)


@torch.inference_mode()
def evaluate(
    model: PatchTST, wins: torch.Tensor, context_len: int, batch_size: int = 1024
) -> tuple[float, float]:
    """MSE and MAE over every window, step and channel (float64 sums)."""
    model.eval()
    sq = ab = 0.0
    count = 0
    for start in range(0, len(wins), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(wins)))
        x, y = batch(wins, idx, context_len)
        err = (model(x) - y).double()
        sq += err.square().sum().item()
        ab += err.abs().sum().item()
        count += err.numel()
    model.train()
    return sq / count, ab / count


def run(args: argparse.Namespace) -> dict:
    """Train with early stopping, reload the best-validation weights, score the test set."""
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    series = load_splits(args.csv, args.context_len)
    n_channels = series["train"].shape[1]
    cfg = ModelConfig(
        context_len=args.context_len, patch_len=16, stride=8, d_model=16, n_heads=4, n_layers=3,
        d_ff=128, dropout=0.3, head_dropout=0.0, norm="batch", revin=True, revin_affine=False,
        residual_attention=not args.plain_attention, head="forecast", n_channels=n_channels,
        horizon=args.horizon,
    )
    model = PatchTST(cfg)
    wins = {k: windows(v, args.context_len, args.horizon) for k, v in series.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    n_train = len(wins["train"])
    steps = n_train // args.batch_size  # the reference drops the last incomplete batch
    log(f"{cfg.n_patches} patches, {count_parameters(model):,} parameters; windows: "
        + ", ".join(f"{k} {len(v):,}" for k, v in wins.items()))

    best_val, best_epoch, best_state, epochs_run = math.inf, -1, None, 0
    for epoch in range(args.epochs):
        epoch_start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch, args.lr)
        order = torch.randperm(n_train, generator=gen)
        train_loss = torch.zeros(())
        for step in range(steps):
            x, y = batch(wins["train"], order[step * args.batch_size:(step + 1) * args.batch_size],
                         args.context_len)
            loss = F.mse_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            train_loss += loss.detach()
        val_mse, _ = evaluate(model, wins["val"], args.context_len)
        epochs_run = epoch + 1
        improved = val_mse < best_val
        if improved:
            best_val, best_epoch = val_mse, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        log(f"epoch {epoch + 1:3d}  lr {lr_at(epoch, args.lr):.2e}  train {train_loss.item() / steps:.4f}"
            f"  val {val_mse:.4f}{'  *' if improved else ''}  {time.perf_counter() - epoch_start:.1f}s")
        if epoch + 1 - best_epoch >= args.patience:
            log(f"no better validation loss for {args.patience} epochs: stopping")
            break
        if args.max_minutes and time.perf_counter() - started > args.max_minutes * 60:
            log(f"time budget of {args.max_minutes} min spent: stopping")
            break

    assert best_state is not None
    model.load_state_dict(best_state)
    mse, mae = evaluate(model, wins["test"], args.context_len)
    return {
        "mse": round(mse, 4),
        "mae": round(mae, 4),
        "epochs": epochs_run,
        "best_epoch": best_epoch,
        "n_test_windows": len(wins["test"]),
        "seconds": round(time.perf_counter() - started, 1),
    }


def log(message: str) -> None:
    """Progress to stderr, so --json leaves stdout to the result."""
    print(message, file=sys.stderr, flush=True)


def render(result: dict, args: argparse.Namespace) -> str:
    """A readable table: this run beside the paper's figures."""
    paper = PAPER.get(args.horizon)
    whole = PAPER_WHOLE_TEST_MSE.get(args.horizon)
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    rows = [
        ("fintrain PatchTST, whole test set", result["mse"], result["mae"]),
        ("paper PatchTST/42, drop-last test set", *(paper or (None, None))),
        ("reference scripts, whole test set (FITS)", whole, None),
    ]
    lines = [f"ETTh1-protocol run on {args.csv.name}, horizon {args.horizon}",
             f"{'':44s}{'MSE':>8s}{'MAE':>8s}"]
    lines += [f"{name:44s}{fmt(mse):>8s}{fmt(mae):>8s}" for name, mse, mae in rows]
    lines.append(
        f"{result['n_test_windows']:,} test windows; best epoch {result['best_epoch']} of "
        f"{result['epochs']}; {result['seconds']:.0f} s on {torch.get_num_threads()} threads"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, required=True, help="ETTh1.csv (or ETTh2.csv)")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--json", action="store_true", help="print only the result as JSON")
    parser.add_argument("--context-len", type=int, default=336)
    parser.add_argument("--epochs", type=int, default=100, help="the reference's maximum")
    parser.add_argument("--patience", type=int, default=8,
                        help="epochs without a better validation loss before stopping")
    parser.add_argument("--max-minutes", type=float, default=18.0,
                        help="stop training after this long (0: no limit)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--plain-attention", action="store_true",
                        help="turn the reference's residual attention off")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not args.csv.is_file():
        parser.error(f"no such file: {args.csv}")
    torch.set_num_threads(args.threads)
    result = run(args)
    print(json.dumps(result) if args.json else render(result, args))


if __name__ == "__main__":
    main()
