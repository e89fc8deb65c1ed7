"""Window tensors: every sample is a view into one (T, C) tensor; a batch is an index gather.

No per-sample ``__getitem__`` and no DataLoader workers: the scaled feature frame lives on the
device once, ``unfold`` exposes all windows as a (T - L + 1, L, C) view of it (``windows``),
and a batch is one ``index_select`` of that view: a single copy of B x L x C values.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import torch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator that depends on (seed, epoch) only, never on global RNG state."""
    # SeedSequence mixes the pair, so (seed, epoch) and (seed + 1, epoch - 1) stay unrelated.
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device="cpu").manual_seed(int(state[0]) << 32 | int(state[1]))


class WindowSet:
    """The samples of one split: windows of ``context_len`` rows ending at row t, and labels.

    Args:
        features: (T, C) float32 scaled features of the whole frame, on the device.
        labels: (T,) float32 label of every row (arbitrary where a row is not a sample).
        ends: (N,) int64 row index of each sample's last row, on the device.
        context_len: L, rows per window.
        dates: the date of each sample's last row (N values).
        tickers: the ticker of each sample, when the frame held several.
        next_returns: each sample's return from close t to close t+1 (N values), for the
            trading view; NaN when not given.
    """

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        ends: torch.Tensor,
        context_len: int,
        dates: pl.Series,
        tickers: pl.Series | None = None,
        next_returns: np.ndarray | None = None,
    ):
        self.context_len = context_len
        self._features = features
        # (T - L + 1, C, L) -> (T - L + 1, L, C): a view, nothing copied.
        self._windows = features.unfold(0, context_len, 1).transpose(1, 2)
        self._ends = ends
        self._starts = ends - (context_len - 1)
        self._labels = labels.index_select(0, ends)  # (N,)
        self.dates = dates
        self.tickers = tickers
        n = int(ends.shape[0])
        self.next_returns = np.full(n, np.nan) if next_returns is None else np.asarray(next_returns, dtype=np.float64)

    def __len__(self) -> int:
        return int(self._ends.shape[0])

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self._features.device

    @property
    def n_features(self) -> int:
        """C, feature columns per row."""
        return int(self._features.shape[1])

    @property
    def features(self) -> torch.Tensor:
        """The scaled (T, C) float32 tensor of the whole frame that the windows view."""
        return self._features

    @property
    def labels(self) -> torch.Tensor:
        """Every sample's label, (N,) float32."""
        return self._labels

    @property
    def ends(self) -> torch.Tensor:
        """Row index (into the frame) of each sample's last row, (N,) int64."""
        return self._ends

    @property
    def positive_rate(self) -> float:
        """Mean label: the share of positives for a 0/1 task."""
        # Copy to the host before the cast: MPS has no float64.
        return float(self._labels.cpu().double().mean()) if len(self) else float("nan")

    def label_stats(self) -> dict[str, float]:
        """Mean and population std of the labels, computed in float64."""
        if not len(self):
            return {"mean": float("nan"), "std": float("nan")}
        labels = self._labels.cpu().double()  # copy, then cast: MPS has no float64
        return {"mean": float(labels.mean()), "std": float(labels.std(unbiased=False))}

    def batch_indices(
        self,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
    ) -> list[torch.Tensor]:
        """The epoch's batches as index tensors (on the device), in order.

        The order depends on (seed, epoch) only, so a resumed run rebuilds the same list and
        skips the batches it already took.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=epoch_generator(seed, epoch))
        else:
            order = torch.arange(n)
        if drop_last:
            order = order[: n - n % batch_size]
        return list(order.to(self.device).split(batch_size))

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows and labels of the samples ``idx``: x (B, L, C) and y (B,), float32."""
        idx = idx.to(self.device)
        x = self._windows.index_select(0, self._starts[idx])  # (B, L, C), contiguous
        return x, self._labels.index_select(0, idx)

    @property
    def windows(self) -> torch.Tensor:
        """Every window of the frame, (T - L + 1, L, C): a view, not a copy.

        Sample i is ``windows[ends[i] - L + 1]``.
        """
        return self._windows

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``gather`` of each of ``batch_indices(...)``."""
        for idx in self.batch_indices(batch_size, shuffle, seed, epoch, drop_last):
            yield self.gather(idx)

    def last_row_features(self) -> torch.Tensor:
        """The scaled features of each window's last row, (N, C): a linear baseline's input."""
        return self._features.index_select(0, self._ends)

    def __repr__(self) -> str:
        span = f", {self.dates[0]} .. {self.dates[-1]}" if len(self) else ""
        return f"WindowSet({len(self)} windows of {self.context_len} x {self.n_features}{span})"
