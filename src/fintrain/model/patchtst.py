"""PatchTST (Nie et al., ICLR 2023), as in the reference code's ``PatchTST_supervised``.

Input windows are (B, L, C) float32. Each channel is normalised on its own (RevIN), cut into
overlapping patches, embedded by one shared linear map and encoded by one shared transformer
("channel independence"); a head turns the encoded patches into the output.

Deliberate departures from the reference code, none of which changes what the model computes or
how its parameters are initialised in distribution:

- Q, K and V come from one fused ``Linear(d, 3d)`` (same parameter count; the default init of a
  linear layer depends only on its fan-in, which is d either way).
- The reference applies two dropouts in a row to the attention output (inside the attention's
  output projection and again before the residual add). Two independent masks with keep
  probability 1-p are one mask with keep probability (1-p)^2, so one dropout with that rate does
  the same with one pass over the activations.
- The forecast head flattens each channel's (N, d) patches in patch-major order rather than
  transposing to (d, N) first: the flattened vector is a fixed permutation of the reference's, so
  the linear layer on top spans the same functions with identically distributed weights, and a
  copy of the whole activation is saved.
- BatchNorm over d_model runs on the (B*C*N, d) view instead of transposing to (B*C, d, N): the
  statistics are over the same elements.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fintrain.config import ModelConfig

# RevIN's variance floor, as in the reference (its std is sqrt(var + eps)).
REVIN_EPS = 1e-5


class RevIN(nn.Module):
    """Reversible instance normalisation over time, per sample and channel.

    The statistics are detached, as in the reference: the network learns on normalised windows
    and the scale is put back at the output without gradients flowing through it.
    """

    def __init__(self, n_channels: int, affine: bool = False, eps: float = REVIN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(n_channels))
            self.bias = nn.Parameter(torch.zeros(n_channels))

    def normalise(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalise (B, L, C) windows; returns them with their mean and std, each (B, 1, C)."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        x = (x - mean) / std
        if self.affine:
            x = x * self.weight + self.bias
        return x, mean, std

    def denormalise(self, y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """Undo :meth:`normalise` on (B, H, C) outputs with the input's statistics."""
        if self.affine:
            # eps**2 keeps the division finite if a learned weight reaches zero (reference).
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from ``rand_like`` rather than ``bernoulli_``.

    On CPU, ``bernoulli_`` draws each element far more slowly than ``rand_like``; with dropout
    on every encoder activation that was about a sixth of a training step. The mask has the same
    distribution (keep with probability 1-p, kept values scaled by 1/(1-p)). CUDA and MPS keep
    PyTorch's fused kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Drop elements of ``x`` in training mode; identity in eval mode."""
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        mask = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * mask


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer: attention, add, norm; feed-forward, add, norm."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        self.head_dim = d // cfg.n_heads
        self.scale = self.head_dim**-0.5
        self.residual_attention = cfg.residual_attention
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        # The reference's two dropouts in a row on the attention branch, as one (module docstring).
        self.attn_dropout = Dropout(1.0 - (1.0 - cfg.dropout) ** 2)
        self.ff = nn.Sequential(
            nn.Linear(d, cfg.d_ff),
            nn.GELU(),
            Dropout(cfg.dropout),
            nn.Linear(cfg.d_ff, d),
        )
        self.ff_dropout = Dropout(cfg.dropout)
        self.norm_attn = _norm(cfg.norm, d)
        self.norm_ff = _norm(cfg.norm, d)

    def forward(self, x: Tensor, prev_scores: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Encode (B', N, d) patch embeddings.

        With residual attention (the reference adds each layer's pre-softmax scores to the
        next's) the (N, N) scores of every head are materialised, as in the reference: one
        ``baddbmm`` adds this layer's q k^T * scale to the previous scores, then softmax and a
        product with v. At the ETTh1 shape (42 patches, head_dim 4) this was 4-6% faster per
        training step than fused attention over queries and keys concatenated across layers,
        which made layers 2 and 3 two and three times wider (``benchmarks/README.md``). Without
        it, attention runs through the fused ``F.scaled_dot_product_attention``.

        Args:
            x: (B', N, d) with B' = batch x channels.
            prev_scores: with residual attention, the previous layer's pre-softmax scores,
                (B' x heads, N, N); None for the first layer or without it.

        Returns:
            The encoded (B', N, d) and, with residual attention, this layer's scores.
        """
        bc, n, d = x.shape
        h, hd = self.n_heads, self.head_dim
        # (B', N, 3, heads, hd) -> (3, B', heads, N, hd)
        qkv = self.qkv(x).view(bc, n, 3, h, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        scores = None
        if self.residual_attention:
            # Scaling q (N x hd values per head) rather than the scores (N x N) is the cheaper
            # side of the same product.
            q = (q * self.scale).reshape(bc * h, n, hd)
            kt = k.reshape(bc * h, n, hd).transpose(1, 2)  # (B'*heads, hd, N)
            if prev_scores is None:
                scores = torch.bmm(q, kt)  # (B'*heads, N, N)
            else:
                scores = torch.baddbmm(prev_scores, q, kt)  # (B'*heads, N, N)
            attn = torch.bmm(torch.softmax(scores, dim=-1), v.reshape(bc * h, n, hd))
            attn = attn.view(bc, h, n, hd)
        else:
            attn = F.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (B', heads, N, hd)
        attn = attn.transpose(1, 2).reshape(bc, n, d)
        x = self.norm_attn(x + self.attn_dropout(self.out(attn)))
        x = self.norm_ff(x + self.ff_dropout(self.ff(x)))
        return x, scores


class BatchNormTokens(nn.Module):
    """BatchNorm1d over d_model for (B', N, d) tokens: statistics over all B' x N tokens."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(d_model)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise (B', N, d) -> (B', N, d)."""
        return self.bn(x.reshape(-1, x.shape[-1])).view_as(x)


def _norm(kind: str, d_model: int) -> nn.Module:
    return BatchNormTokens(d_model) if kind == "batch" else nn.LayerNorm(d_model)


class PatchTST(nn.Module):
    """PatchTST with a forecast head (B, L, C) -> (B, H, C) or a predict head -> (B, n_outputs).

    Args:
        config: the architecture; see :class:`fintrain.config.ModelConfig`.

    Example:
        >>> from fintrain.model import PatchTST, budget_config
        >>> model = PatchTST(budget_config("2m", n_channels=20, context_len=60))
        >>> model(torch.randn(32, 60, 20)).shape
        torch.Size([32, 1])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        self.n_patches = cfg.n_patches
        self.revin = RevIN(cfg.n_channels, affine=cfg.revin_affine) if cfg.revin else None
        self.patch_embed = nn.Linear(cfg.patch_len, cfg.d_model)
        # A learnable table, uniform(-0.02, 0.02) as the reference's "zeros" encoding starts.
        self.pos = nn.Parameter(torch.empty(self.n_patches, cfg.d_model).uniform_(-0.02, 0.02))
        self.embed_dropout = Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.head_dropout = Dropout(cfg.head_dropout)
        if cfg.head == "forecast":
            self.head = nn.Linear(self.n_patches * cfg.d_model, cfg.horizon)
        else:
            # Predict head: average each channel's patches, then concatenate the channels.
            # Averaging over patches keeps the head small (C*d inputs rather than C*N*d), which
            # matters with a few thousand daily rows, and attention has already mixed the
            # patches. Channels are concatenated, not averaged, because the channel-independent
            # encoder gives no channel its identity: averaging would make the output blind to
            # which feature said what. (transformers' PatchTSTForRegression pools the same way,
            # so the throughput benchmark compares like with like.)
            self.head = nn.Linear(cfg.n_channels * cfg.d_model, cfg.n_outputs)
        if cfg.compile:
            self.compile()

    def forward(self, x: Tensor) -> Tensor:
        """Run the model on float32 windows.

        Args:
            x: (B, L, C) float32, L = context_len, C = n_channels.

        Returns:
            (B, H, C) for the forecast head (in the input's units when RevIN is on), or
            (B, n_outputs) for the predict head (logits or values).
        """
        cfg = self.config
        if x.dim() != 3 or x.shape[1] != cfg.context_len or x.shape[2] != cfg.n_channels:
            raise ValueError(
                f"PatchTST expects (batch, {cfg.context_len}, {cfg.n_channels}) windows "
                f"(context_len, n_channels); got {tuple(x.shape)}"
            )
        b, _, c = x.shape
        if self.revin is not None:
            x, mean, std = self.revin.normalise(x)
        z = self.encode(x)  # (B*C, N, d)
        if cfg.head == "forecast":
            y = self.head(self.head_dropout(z.reshape(b, c, -1)))  # (B, C, H)
            y = y.transpose(1, 2)  # (B, H, C)
            if self.revin is not None:
                y = self.revin.denormalise(y, mean, std)
            return y
        pooled = z.mean(dim=1).reshape(b, c * cfg.d_model)  # (B, C*d)
        return self.head(self.head_dropout(pooled))  # (B, n_outputs)

    def encode(self, x: Tensor) -> Tensor:
        """Patch, embed and encode normalised (B, L, C) windows into (B*C, N, d_model)."""
        cfg = self.config
        b, _, c = x.shape
        x = x.transpose(1, 2)  # (B, C, L)
        # End padding: repeat the last value `stride` times (ReplicationPad1d((0, stride))).
        x = torch.cat([x, x[..., -1:].expand(b, c, cfg.stride)], dim=-1)  # (B, C, L+S)
        patches = x.unfold(-1, cfg.patch_len, cfg.stride)  # (B, C, N, P)
        z = self.patch_embed(patches).reshape(b * c, self.n_patches, cfg.d_model)  # (B*C, N, d)
        z = self.embed_dropout(z + self.pos)
        scores = None
        for layer in self.layers:
            z, scores = layer(z, scores)
        return z


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def patch_count(context_len: int, patch_len: int, stride: int) -> int:
    """Patches cut from ``context_len`` rows with ``stride`` rows of end padding: (L-P)//S + 2."""
    return (context_len - patch_len) // stride + 2


__all__ = ["PatchTST", "RevIN", "EncoderLayer", "count_parameters", "patch_count"]
