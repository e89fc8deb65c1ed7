"""Training-step throughput of fintrain's PatchTST against transformers' PatchTST, side by side.

One training step is forward, MSE loss, backward and an AdamW step. Each model gets warm-up
steps, then at least five timed repeats; the repeats of the two models alternate, so a change in
the machine's load during the run hits both alike. The figure is the median samples/s.

Three configurations:

- ``etth1``: the ``forecast`` head against ``PatchTSTForPrediction`` (7 channels, context 336,
  horizon 96, patch 16, stride 8, d_model 16, 4 heads, 3 layers, d_ff 128, dropout 0.3,
  batch 128), fintrain with residual attention on, as the ETTh1 accuracy run and the reference
  train it (transformers has no residual attention); marked ``"residual_attention": true``;
- ``etth1_no_residual``: the same with fintrain's residual attention off;
- ``a20_2m``: the ``predict`` head against ``PatchTSTForRegression`` (``num_targets=1``, mean
  pooling) on fintrain's default data shape (20 channels, context 60) with the 2m budget's
  shape, batch 256.

Model FLOP utilisation is the model's achieved FLOP/s (FLOPs of one step counted by
``torch.utils.flop_counter``, through ``fintrain.model.flops.step_flops``, which the scaling
report's compute axis also uses) divided by the FLOP/s of a large fp32 matmul measured in the same
run. ``--compile`` also times fintrain's model under ``torch.compile``.

Usage::

    pip install -e '.[bench]'
    python benchmarks/throughput.py [--json] [--compile]

transformers is a benchmark-only dependency; fintrain itself never imports it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from fintrain.model import ModelConfig, PatchTST, budget_config, count_parameters
from fintrain.model.flops import step_flops


@dataclass
class Case:
    """One comparison: fintrain's config, transformers' class and kwargs, and the data shape."""

    name: str
    fintrain: ModelConfig
    hf_class: str
    hf_config: dict[str, Any]
    batch_size: int
    differences: list[str] = field(default_factory=list)


def cases() -> list[Case]:
    """The two configurations the issue names, each as close across libraries as they allow."""
    etth1 = ModelConfig(
        context_len=336, patch_len=16, stride=8, d_model=16, n_heads=4, n_layers=3, d_ff=128,
        dropout=0.3, head_dropout=0.0, norm="batch", revin=True, revin_affine=False,
        residual_attention=True, head="forecast", n_channels=7, horizon=96,
    )
    # Dropout sites matched: after the positional table, on the attention and feed-forward
    # residual branches, and inside the feed-forward block.
    dropouts = {"positional_dropout": 0.3, "path_dropout": 0.3, "ff_dropout": 0.3,
                "attention_dropout": 0.0}
    a20 = budget_config("2m", n_channels=20, context_len=60, head="predict", n_outputs=1)
    common = {"norm_type": "batchnorm", "pre_norm": False, "positional_encoding_type": "random",
              "share_embedding": True, "channel_attention": False, "use_cls_token": False,
              "loss": "mse", "do_mask_input": False}
    etth1_hf = {"num_input_channels": 7, "context_length": 336, "prediction_length": 96,
                "patch_length": 16, "patch_stride": 8, "num_hidden_layers": 3, "d_model": 16,
                "num_attention_heads": 4, "ffn_dim": 128, "head_dropout": 0.0,
                "pooling_type": None, "scaling": "std", **dropouts, **common}
    etth1_differences = [
        "fintrain pads the end (42 patches), transformers does not (41)",
        "fintrain's RevIN undoes its scaling at the output; transformers' std scaler too",
        "the reference drops the attention output twice (fintrain, as one dropout of "
        "rate 1-(1-p)^2); transformers once",
    ]
    return [
        Case(
            "etth1", etth1, "PatchTSTForPrediction", etth1_hf, batch_size=128,
            differences=[
                "fintrain has the reference's residual attention on (as the ETTh1 accuracy run "
                "and the paper's code); transformers has no residual attention",
                *etth1_differences,
            ],
        ),
        Case(
            "etth1_no_residual",
            ModelConfig.model_validate({**etth1.model_dump(), "residual_attention": False}),
            "PatchTSTForPrediction", etth1_hf, batch_size=128,
            differences=["residual attention off in both", *etth1_differences],
        ),
        Case(
            "a20_2m", a20, "PatchTSTForRegression",
            {"num_input_channels": 20, "context_length": 60, "num_targets": 1,
             "patch_length": a20.patch_len, "patch_stride": a20.stride,
             "num_hidden_layers": a20.n_layers, "d_model": a20.d_model,
             "num_attention_heads": a20.n_heads, "ffn_dim": a20.d_ff,
             "head_dropout": a20.head_dropout, "pooling_type": "mean", "scaling": None,
             "positional_dropout": a20.dropout, "path_dropout": a20.dropout,
             "ff_dropout": a20.dropout, "attention_dropout": 0.0, **common},
            batch_size=256,
            differences=[
                f"fintrain pads the end ({a20.n_patches} patches), transformers does not "
                f"({a20.n_patches - 1})",
                "neither scales the inputs (fintrain's predict head has RevIN off; "
                "transformers scaling=None)",
            ],
        ),
    ]


def hf_model(case: Case) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """transformers' model for a case (SDPA attention, its fastest on CPU) and its forward."""
    import transformers

    config = transformers.PatchTSTConfig(**case.hf_config)
    config._attn_implementation = "sdpa"
    model = getattr(transformers, case.hf_class)(config)
    if case.hf_class == "PatchTSTForPrediction":
        return model, lambda x: model(past_values=x).prediction_outputs
    return model, lambda x: model(past_values=x).regression_outputs


def data_for(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random batch and its targets."""
    gen = torch.Generator().manual_seed(0)
    cfg = case.fintrain
    x = torch.randn(case.batch_size, cfg.context_len, cfg.n_channels, generator=gen)
    if cfg.head == "forecast":
        y = torch.randn(case.batch_size, cfg.horizon, cfg.n_channels, generator=gen)
    else:
        y = torch.randn(case.batch_size, cfg.n_outputs, generator=gen)
    return x, y


def step_fn(
    model: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor, y: torch.Tensor,
) -> Callable[[], None]:
    """One training step: forward, MSE, backward, AdamW."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step() -> None:
        loss = F.mse_loss(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n fp32 matmul: the machine's attainable peak for this run."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def time_interleaved(
    steps: dict[str, Callable[[], None]], batch_size: int, repeats: int, steps_per_repeat: int,
    warmup: int,
) -> dict[str, float]:
    """Median samples/s of each step function, repeats alternating between them."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(steps_per_repeat):
                step()
            rates[name].append(steps_per_repeat * batch_size / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def run_case(case: Case, args: argparse.Namespace, peak: float) -> dict[str, Any]:
    """Throughput of both implementations (and compiled fintrain with --compile)."""
    x, y = data_for(case)
    torch.manual_seed(0)
    ours = PatchTST(case.fintrain)
    theirs, theirs_forward = hf_model(case)
    steps = {
        "fintrain": step_fn(ours, ours, x, y),
        "transformers": step_fn(theirs, theirs_forward, x, y),
    }
    if args.compile:
        compiled = PatchTST(case.fintrain.model_copy(update={"compile": True}))
        steps["fintrain_compiled"] = step_fn(compiled, compiled, x, y)
        log(f"{case.name}: compiling...")
        start = time.perf_counter()
        steps["fintrain_compiled"]()
        compile_s = time.perf_counter() - start
    # FLOPs grow linearly with the batch: count them on 8 samples rather than spend a full step.
    small = 8
    flops = step_flops(step_fn(ours, ours, x[:small], y[:small])) * case.batch_size // small
    big = case.batch_size * case.fintrain.n_channels >= 4096
    per_repeat = 1 if big else 3
    log(f"{case.name}: timing {args.repeats} repeats of {per_repeat} step(s) per model...")
    rates = time_interleaved(steps, case.batch_size, args.repeats, per_repeat,
                             1 if big else args.warmup)
    result: dict[str, Any] = {
        "fintrain": round(rates["fintrain"], 1),
        "transformers": round(rates["transformers"], 1),
        "ratio": round(rates["fintrain"] / rates["transformers"], 3),
        "residual_attention": case.fintrain.residual_attention,
        "batch_size": case.batch_size,
        "params": {"fintrain": count_parameters(ours), "transformers": count_parameters(theirs)},
        "flops_per_step": flops,
        "mfu": round(flops * rates["fintrain"] / case.batch_size / peak, 4),
        "transformers_class": case.hf_class,
        "transformers_config": case.hf_config,
        "differences": case.differences,
    }
    if args.compile:
        result["fintrain_compiled"] = round(rates["fintrain_compiled"], 1)
        result["compiled_ratio"] = round(rates["fintrain_compiled"] / rates["fintrain"], 3)
        result["compile_seconds"] = round(compile_s, 1)
    return result


def log(message: str) -> None:
    """Progress to stderr, so --json leaves stdout to the result."""
    print(message, file=sys.stderr, flush=True)


def render(results: dict[str, Any]) -> str:
    """A readable side-by-side table."""
    names = list(results["mfu"])
    lines = [f"training-step throughput, {torch.get_num_threads()} threads, "
             f"fp32 matmul peak {results['matmul_gflops']:.1f} GFLOP/s",
             f"{'config':18s} {'residual':>8s} {'fintrain':>10s} {'transformers':>13s} "
             f"{'ratio':>7s} {'MFU':>7s}   (samples/s; median)"]
    for name in names:
        r = results[name]
        lines.append(f"{name:18s} {'on' if r['residual_attention'] else 'off':>8s} "
                     f"{r['fintrain']:10.1f} {r['transformers']:13.1f} "
                     f"{r['ratio']:6.2f}x {r['mfu']:7.1%}")
        if "fintrain_compiled" in r:
            lines.append(f"{'':18s} compiled: {r['fintrain_compiled']:.1f} samples/s, "
                         f"{r['compiled_ratio']:.2f}x eager, compile {r['compile_seconds']:.0f} s")
    for name in names:
        r = results[name]
        lines.append(f"{name}: {r['transformers_class']}, parameters fintrain "
                     f"{r['params']['fintrain']:,} vs transformers {r['params']['transformers']:,}")
        lines += [f"  - {d}" for d in r["differences"]]
        lines.append(f"  transformers PatchTSTConfig({json.dumps(r['transformers_config'])})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the result as JSON")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per model (>= 5)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    try:
        import transformers  # noqa: F401
    except ImportError:
        parser.error("transformers is not installed: pip install -e '.[bench]'")
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_flops_per_s()
    results: dict[str, Any] = {}
    for case in cases():
        results[case.name] = run_case(case, args, peak)
    results["mfu"] = {case.name: results[case.name]["mfu"] for case in cases()}
    results["matmul_gflops"] = round(peak / 1e9, 1)
    results["threads"] = torch.get_num_threads()
    print(json.dumps(results) if args.json else render(results))


if __name__ == "__main__":
    main()
