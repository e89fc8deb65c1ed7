"""Per-feature z-scoring with statistics from the training rows only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fintrain.errors import CheckpointError

# A feature this flat over the training rows is left unscaled (std 1) rather than blown up.
MIN_STD = 1e-12


@dataclass(frozen=True)
class Scaler:
    """Mean and standard deviation (population, ddof 0) of each feature column.

    Attributes:
        mean: (C,) float32 on the CPU.
        std: (C,) float32 on the CPU; 1 for a column that was constant in training.
        columns: the feature column names, in order.
    """

    mean: torch.Tensor
    std: torch.Tensor
    columns: list[str]

    @classmethod
    def fit(cls, values: np.ndarray, columns: list[str]) -> Scaler:
        """Fit on (rows, C) values; the sums are taken in float64."""
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        std = np.where(std > MIN_STD, std, 1.0)
        return cls(
            torch.from_numpy(mean.astype(np.float32)),
            torch.from_numpy(std.astype(np.float32)),
            list(columns),
        )

    def transform_numpy(self, values: np.ndarray) -> np.ndarray:
        """Scale (rows, C) float64 values in float64, returned as float32."""
        mean = self.mean.double().numpy()
        std = self.std.double().numpy()
        return ((np.asarray(values, dtype=np.float64) - mean) / std).astype(np.float32)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Scale a float32 tensor whose last dimension is the feature columns."""
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and a list, loadable with ``torch.load(weights_only=True)``."""
        return {"mean": self.mean.clone(), "std": self.std.clone(), "columns": list(self.columns)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Scaler:
        """Rebuild from ``state_dict()``; a malformed state is a CheckpointError."""
        try:
            mean = torch.as_tensor(state["mean"], dtype=torch.float32).cpu()
            std = torch.as_tensor(state["std"], dtype=torch.float32).cpu()
            columns = [str(c) for c in state["columns"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"scaler state is malformed ({exc!r})") from exc
        if not (mean.shape == std.shape == (len(columns),)):
            raise CheckpointError(
                f"scaler state has {tuple(mean.shape)} means, {tuple(std.shape)} stds and "
                f"{len(columns)} columns; they must agree"
            )
        return cls(mean, std, columns)
