"""PatchTST: output shapes, the reference's parameter count, RevIN, patching, residual attention,
learning, determinism and float32-only computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from fintrain.model import ModelConfig, PatchTST, RevIN, count_parameters, patch_count


def tiny(**fields) -> ModelConfig:
    """A small model config; ``fields`` override."""
    base = dict(
        context_len=32, patch_len=8, stride=4, d_model=16, n_heads=2, n_layers=2, d_ff=32,
        dropout=0.0, head_dropout=0.0, n_channels=3, horizon=5, n_outputs=2,
    )
    return ModelConfig(**{**base, **fields})


def etth1_config(**fields) -> ModelConfig:
    """The reference's ETTh1 model at horizon 96."""
    base = dict(
        context_len=336, patch_len=16, stride=8, d_model=16, n_heads=4, n_layers=3, d_ff=128,
        dropout=0.3, head_dropout=0.0, revin=True, revin_affine=False, residual_attention=True,
        head="forecast", n_channels=7, horizon=96,
    )
    return ModelConfig(**{**base, **fields})


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_forecast_head_maps_windows_to_horizon_by_channel(residual: bool, norm: str) -> None:
    torch.manual_seed(0)
    model = PatchTST(tiny(head="forecast", residual_attention=residual, norm=norm))
    out = model(torch.randn(4, 32, 3))
    assert out.shape == (4, 5, 3)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("revin", [False, True])
def test_predict_head_outputs_n_outputs_per_sample(revin: bool) -> None:
    torch.manual_seed(0)
    model = PatchTST(tiny(head="predict", n_outputs=2, revin=revin))
    assert model(torch.randn(4, 32, 3)).shape == (4, 2)


def test_predict_head_knows_which_channel_said_what() -> None:
    # Swapping two channels must change the prediction: the head concatenates channels.
    torch.manual_seed(0)
    model = PatchTST(tiny(head="predict", revin=False)).eval()
    x = torch.randn(2, 32, 3)
    swapped = x[..., [1, 0, 2]]
    assert not torch.allclose(model(x), model(swapped))


def test_etth1_configuration_has_the_reference_parameter_count() -> None:
    model = PatchTST(etth1_config())
    assert model.n_patches == 42
    assert count_parameters(model) == 81_728
    # Residual attention adds no parameters; RevIN without affine adds none either.
    assert count_parameters(PatchTST(etth1_config(residual_attention=False))) == 81_728
    assert count_parameters(PatchTST(etth1_config(revin_affine=True))) == 81_728 + 2 * 7


def test_wrong_input_shape_is_a_clear_error() -> None:
    model = PatchTST(tiny())
    with pytest.raises(ValueError, match=r"\(batch, 32, 3\).*got \(4, 30, 3\)"):
        model(torch.randn(4, 30, 3))


@settings(max_examples=40)
@given(
    batch=st.integers(1, 4),
    length=st.integers(2, 50),
    channels=st.integers(1, 5),
    scale=st.floats(1e-2, 1e3),
    shift=st.floats(-1e3, 1e3),
    affine=st.booleans(),
)
def test_revin_normalise_then_denormalise_returns_the_input(
    batch: int, length: int, channels: int, scale: float, shift: float, affine: bool
) -> None:
    gen = torch.Generator().manual_seed(length * 31 + channels)
    x = torch.randn(batch, length, channels, generator=gen) * scale + shift
    revin = RevIN(channels, affine=affine)
    if affine:
        with torch.no_grad():
            revin.weight.uniform_(0.5, 2.0, generator=gen)
            revin.bias.uniform_(-1.0, 1.0, generator=gen)
    z, mean, std = revin.normalise(x)
    back = revin.denormalise(z, mean, std)
    torch.testing.assert_close(back, x, rtol=1e-4, atol=1e-4 * (abs(shift) + scale))
    if not affine and scale >= 0.01 * abs(shift):
        # Normalised windows have zero mean per channel (checked where float32 can resolve it).
        torch.testing.assert_close(z.mean(dim=1), torch.zeros(batch, channels), atol=1e-3, rtol=0)


def test_patch_count_formula_matches_the_paper() -> None:
    assert patch_count(336, 16, 8) == 42
    assert patch_count(512, 16, 8) == 64
    assert patch_count(60, 8, 4) == 15


@settings(max_examples=30)
@given(data=st.data())
def test_patch_count_formula_matches_the_patches_the_model_cuts(data: st.DataObject) -> None:
    context_len = data.draw(st.integers(2, 80))
    patch_len = data.draw(st.integers(1, context_len))
    stride = data.draw(st.integers(1, patch_len))
    cfg = tiny(context_len=context_len, patch_len=patch_len, stride=stride, n_layers=1)
    model = PatchTST(cfg)
    z = model.encode(torch.randn(2, context_len, 3))
    assert z.shape == (2 * 3, patch_count(context_len, patch_len, stride), 16)
    assert cfg.n_patches == z.shape[1]


def test_end_padding_repeats_the_last_value() -> None:
    # The last patch of a stride-aligned context is the final value repeated `stride` times
    # after the last patch_len - stride real values.
    model = PatchTST(tiny(context_len=8, patch_len=4, stride=2, revin=False, n_layers=1))
    seen: list[torch.Tensor] = []
    model.patch_embed.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    x = torch.arange(8, dtype=torch.float32).view(1, 8, 1).expand(1, 8, 3).contiguous()
    model.eval()(x)
    patches = seen[0]  # (B, C, N, P)
    assert patches.shape == (1, 3, 4, 4)
    assert patches[0, 0, -1].tolist() == [6.0, 7.0, 7.0, 7.0]
    assert patches[0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def explicit_residual_encode(model: PatchTST, z: torch.Tensor) -> torch.Tensor:
    """The reference's formulation: each layer adds the previous layer's scores to its own."""
    prev = None
    for layer in model.layers:
        bc, n, d = z.shape
        qkv = layer.qkv(z).view(bc, n, 3, layer.n_heads, layer.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        scores = q @ k.transpose(-2, -1) * layer.scale
        if prev is not None:
            scores = scores + prev
        prev = scores
        attn = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(bc, n, d)
        z = layer.norm_attn(z + layer.out(attn))
        z = layer.norm_ff(z + layer.ff(z))
    return z


def test_residual_attention_equals_adding_the_previous_scores() -> None:
    torch.manual_seed(0)
    model = PatchTST(tiny(residual_attention=True, n_layers=3, norm="layer")).eval()
    x = torch.randn(2, 32, 3)
    b, c = 2, 3
    xt = x.transpose(1, 2)
    xt = torch.cat([xt, xt[..., -1:].expand(b, c, 4)], dim=-1)
    z0 = model.patch_embed(xt.unfold(-1, 8, 4)).reshape(b * c, -1, 16) + model.pos
    with torch.no_grad():
        want = explicit_residual_encode(model, z0)
        got = model.encode(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # And it is not the plain model: the switch changes the computation.
    with torch.no_grad():
        for layer in model.layers:
            layer.residual_attention = False
        assert not torch.allclose(model.encode(x), want, atol=1e-4)


@pytest.mark.parametrize("head", ["forecast", "predict"])
def test_tiny_model_overfits_one_fixed_batch(head: str) -> None:
    torch.manual_seed(0)
    cfg = tiny(head=head, n_outputs=1, revin=head == "forecast")
    model = PatchTST(cfg)
    x = torch.randn(16, 32, 3)
    y = torch.randn(16, 5, 3) if head == "forecast" else torch.randn(16, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(200):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.1 * first


def test_same_seed_gives_same_weights_and_outputs() -> None:
    def build_and_run() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        torch.manual_seed(7)
        model = PatchTST(tiny(dropout=0.2, head_dropout=0.1, residual_attention=True))
        out = model(torch.randn(4, 32, 3))  # training mode: dropout masks come from the seed too
        return model.state_dict(), out

    (w1, o1), (w2, o2) = build_and_run(), build_and_run()
    assert w1.keys() == w2.keys()
    for name in w1:
        assert torch.equal(w1[name], w2[name]), name
    assert torch.equal(o1, o2)
    torch.manual_seed(8)
    assert not torch.equal(PatchTST(tiny()).head.weight, w1["head.weight"])


class OpRecorder(TorchDispatchMode):
    """Records the dtype of every tensor an operator returns, and the operators' names."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: set[torch.dtype] = set()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.add(str(func.overloadpacket))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.dtypes.add(t.dtype)
        return out


@pytest.mark.parametrize("head", ["forecast", "predict"])
def test_training_step_is_float32_only_and_never_syncs(head: str) -> None:
    # MPS has no float64; .item() in forward would stall the GPU every step.
    torch.manual_seed(0)
    model = PatchTST(tiny(head=head, residual_attention=True, revin=True, revin_affine=True,
                          dropout=0.1))
    x = torch.randn(4, 32, 3)
    with OpRecorder() as rec:
        model(x).square().mean().backward()
    assert torch.float64 not in rec.dtypes
    assert not any("local_scalar_dense" in op for op in rec.ops)


def available_accelerators() -> list[str]:
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@pytest.mark.parametrize("device", available_accelerators() or [pytest.param("none", marks=pytest.mark.skip(reason="no CUDA or MPS device here"))])
@pytest.mark.parametrize("residual", [False, True])
def test_accelerator_matches_cpu(device: str, residual: bool) -> None:
    torch.manual_seed(0)
    model = PatchTST(tiny(head="forecast", residual_attention=residual)).eval()
    x = torch.randn(4, 32, 3)
    want = model(x)
    got = model.to(device)(x.to(device)).cpu()
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3)
