"""Configuration: frozen pydantic models grouped by concern, and how they are loaded.

Precedence, highest first: command-line options, ``FINTRAIN_*`` environment variables (nested
fields as ``FINTRAIN_TRAIN__LR``), a TOML file (``--config``), then the defaults below.
Every merge goes through ``RunConfig.model_validate`` so nothing skips validation.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from fintrain.errors import ConfigError, did_you_mean

ENV_PREFIX = "FINTRAIN_"
# Environment variables of the workspace, the CLI and the tests (the shared data folder), not
# configuration fields.
RESERVED_ENV = {"DATA_DIR", "RUNS_DIR", "DEBUG", "CACHE_DIR", "SHARED_DATA"}
# What a resumed run (`fintrain train --resume`, a sweep's later call) may change: where and how
# long it trains, never what it learns from.
RESUMABLE_FIELDS = ("thermal.source", "train.device", "train.max_steps", "train.epochs", "train.checkpoint_every")
# Validation metrics a run can be selected on (eval.select_on), by kind of task. pos_rate is a
# metric but says nothing about quality, so nothing is selected on it.
SELECTABLE_METRICS = {
    "classification": ("auc", "accuracy", "brier", "log_loss"),
    "regression": ("mse", "mae", "dir_acc"),
}


def _choices(annotation: Any) -> tuple[str, ...]:
    """The string values of the Literal in a field's annotation (``int | Literal["auto"]`` -> ``("auto",)``)."""
    if get_origin(annotation) is Literal:
        return tuple(v for v in get_args(annotation) if isinstance(v, str))
    return tuple(c for arg in get_args(annotation) for c in _choices(arg))


class Section(BaseModel):
    """Base of every configuration model: frozen, unknown keys rejected, choices in any case."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _choice_in_any_case(cls, value: Any, info: ValidationInfo) -> Any:
        # `--source Sample`, `--device CPU`, `batch_size = "AUTO"`: the choices are lower-case words.
        if not isinstance(value, str):
            return value
        lowered = value.strip().lower()
        return lowered if lowered in _choices(cls.model_fields[info.field_name].annotation) else value


class DataConfig(Section):
    """Where market data comes from and what counts as valid."""

    ticker: str = Field(
        "SPY", min_length=1, description="Ticker symbol, or several comma-separated: SPY,QQQ,IWM."
    )
    source: Literal["yahoo", "sample"] = Field("yahoo", description="Where `fetch` gets data.")
    start: dt.date | None = Field(None, description="First date to keep (inclusive).")
    end: dt.date | None = Field(None, description="Last date to keep (inclusive).")
    min_rows: int = Field(250, ge=1, description="Fewest rows a valid series may have.")
    retries: int = Field(4, ge=0, le=20, description="Retries on rate limits and network errors.")
    backoff_s: float = Field(2.0, ge=0, description="First retry wait; doubles each retry.")

    @field_validator("ticker")
    @classmethod
    def _upper(cls, v: str) -> str:
        tickers = [t.strip().upper() for t in v.split(",") if t.strip()]
        if not tickers:
            raise ValueError("no ticker given")
        for ticker in tickers:
            # Tickers become file names: letters, digits and the few marks exchanges use.
            if not re.fullmatch(r"[A-Z0-9^][A-Z0-9.\-^=_]{0,31}", ticker):
                raise ValueError(
                    f"{ticker!r} is not a ticker symbol (letters, digits, '.', '-', '^', '=', '_')"
                )
        duplicates = sorted({t for t in tickers if tickers.count(t) > 1})
        if duplicates:
            raise ValueError(f"{', '.join(duplicates)} listed more than once")
        return ",".join(tickers)

    @property
    def tickers(self) -> list[str]:
        """The ticker list (``ticker`` may hold several, comma-separated: SPY,QQQ,IWM)."""
        return self.ticker.split(",")

    @model_validator(mode="after")
    def _dates_ordered(self) -> DataConfig:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start={self.start} is after end={self.end}")
        return self


class FeatureConfig(Section):
    """Which feature tier to build."""

    tier: str = Field("a20", min_length=1, description="Feature tier name, e.g. a20 or a50.")


class TargetConfig(Section):
    """What the model predicts."""

    task: Literal["threshold", "direction", "return"] = Field(
        "threshold", description="threshold: max high over t+1..t+h >= close*(1+tau); "
        "direction: close[t+h] > close[t]; return: log(close[t+h]/close[t])."
    )
    horizon: int = Field(1, ge=1, le=252, description="Days ahead the label looks (h).")
    threshold: float = Field(0.01, gt=0, lt=1, description="tau of the threshold task.")


class SplitConfig(Section):
    """Chronological train/validation/test splits and the windows cut from them."""

    context_len: int = Field(60, ge=2, le=4096, description="Rows in one input window.")
    train_frac: float = Field(0.70, gt=0, lt=1)
    val_frac: float = Field(0.15, gt=0, lt=1)
    train_end: dt.date | None = Field(None, description="Last training date (overrides fractions).")
    val_end: dt.date | None = Field(None, description="Last validation date.")
    gap: int | None = Field(
        None, ge=0, description="Purge gap in rows between splits; default and minimum: the horizon."
    )
    data_fraction: float = Field(
        1.0, gt=0, le=1, description="Share of the training period kept: its oldest dates are dropped so that "
        "this fraction of them remains, ending at the same last training date; validation and test "
        "windows stay the same (the data axis of a scaling study)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SplitConfig:
        if self.train_frac + self.val_frac >= 1:
            raise ValueError(
                f"train_frac={self.train_frac} + val_frac={self.val_frac} leaves no test rows"
            )
        if (self.train_end is None) != (self.val_end is None):
            raise ValueError("train_end and val_end must be given together")
        if self.train_end and self.val_end and self.train_end >= self.val_end:
            raise ValueError(f"train_end={self.train_end} must be before val_end={self.val_end}")
        return self


class ModelChoice(Section):
    """Which PatchTST to train: a parameter budget, with optional architecture overrides."""

    budget: str = Field("2m", min_length=1, description="Parameter budget: a preset (2m, 20m, 200m) or a size such as 300k; any case.")
    patch_len: int | None = Field(None, ge=1)
    stride: int | None = Field(None, ge=1)
    d_model: int | None = Field(None, ge=1)
    n_heads: int | None = Field(None, ge=1)
    n_layers: int | None = Field(None, ge=1)
    d_ff: int | None = Field(None, ge=1)
    dropout: float | None = Field(None, ge=0, lt=1)
    head_dropout: float | None = Field(None, ge=0, lt=1)
    norm: Literal["batch", "layer"] | None = None
    revin: bool | None = None
    residual_attention: bool | None = None
    compile: bool = Field(False, description="torch.compile the model (opt-in).")

    @field_validator("budget")
    @classmethod
    def _lower(cls, v: str) -> str:
        # Budget names are case-insensitive (2M is 2m); one spelling in run names and reports.
        return v.strip().lower()

    def overrides(self) -> dict[str, Any]:
        """The architecture fields set here, to apply on top of the budget's preset."""
        skip = {"budget", "compile"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


class ModelConfig(Section):
    """The full PatchTST architecture (``fintrain.model.budget_config`` fills it from a preset).

    The defaults are the 2m budget's shape for fintrain's default data (20 channels, a context of
    60 rows, the ``predict`` head).
    """

    context_len: int = Field(60, ge=2, le=4096, description="Input rows (L).")
    patch_len: int = Field(8, ge=1, description="Rows per patch (P).")
    stride: int = Field(4, ge=1, description="Rows between patch starts (S).")
    d_model: int = Field(192, ge=1, description="Width of the patch embeddings.")
    n_heads: int = Field(6, ge=1, description="Attention heads; must divide d_model.")
    n_layers: int = Field(4, ge=1, description="Encoder layers.")
    d_ff: int = Field(896, ge=1, description="Hidden width of the feed-forward blocks.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout in the embedding and encoder.")
    head_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the output layer.")
    norm: Literal["batch", "layer"] = Field(
        "batch", description="Encoder normalisation: BatchNorm1d (the paper's) or LayerNorm."
    )
    revin: bool = Field(True, description="Reversible instance normalisation of each window.")
    revin_affine: bool = Field(False, description="Learnable RevIN scale and shift per channel.")
    residual_attention: bool = Field(
        False, description="Add each layer's pre-softmax scores to the next (the reference code's)."
    )
    head: Literal["forecast", "predict"] = Field(
        "predict", description="forecast: (B, L, C) -> (B, H, C); predict: (B, L, C) -> (B, n_outputs)."
    )
    n_channels: int = Field(20, ge=1, description="Input channels (features) C.")
    horizon: int = Field(1, ge=1, description="Steps the forecast head predicts (H).")
    n_outputs: int = Field(1, ge=1, description="Values the predict head outputs.")
    compile: bool = Field(False, description="torch.compile the model (opt-in).")

    @property
    def n_patches(self) -> int:
        """Patches per channel: (L - P) // S + 2 (the end padding adds one)."""
        return (self.context_len - self.patch_len) // self.stride + 2

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.patch_len > self.context_len:
            raise ValueError(
                f"patch_len={self.patch_len} is longer than context_len={self.context_len}"
            )
        if self.stride > self.patch_len:
            raise ValueError(
                f"stride={self.stride} is above patch_len={self.patch_len}: rows between "
                "patches would never be seen"
            )
        return self


class TrainConfig(Section):
    """The optimisation loop."""

    epochs: int = Field(20, ge=1, description="Maximum epochs.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    batch_size: int | Literal["auto"] = Field(64, description="Samples per step, or auto.")
    lr: float = Field(3e-4, gt=0, le=1, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(100, ge=0, description="Linear warm-up steps.")
    schedule: Literal["cosine", "constant"] = Field("cosine")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine floor as a fraction of lr.")
    grad_clip: float | None = Field(1.0, gt=0, description="Max gradient norm; null turns it off.")
    patience: int = Field(5, ge=1, description="Epochs without validation improvement.")
    pos_weight: float | Literal["auto"] | None = Field(
        None, description="BCE positive-class weight: a number, auto (neg/pos of train), or none."
    )
    seed: int = Field(0, ge=0)
    device: Literal["auto", "mps", "cuda", "cpu"] = Field("auto")
    precision: Literal["fp32", "bf16"] = Field("fp32")
    log_every: int = Field(20, ge=1, description="Steps between training-loss logs.")
    log_every_s: float = Field(
        30.0, gt=0, description="Seconds of training between training-loss logs as well, whichever of "
        "log_every and log_every_s comes first (a slow model still gets points in TensorBoard)."
    )
    checkpoint_every: int | None = Field(None, ge=1, description="Steps between last.pt saves.")
    max_nonfinite_steps: int = Field(
        10, ge=1, description="Optimizer steps in a row skipped for a non-finite loss or gradient norm "
        "before training stops (exit 1)."
    )

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("must be a positive integer or 'auto'")
        return v


class EvalConfig(Section):
    """How a run is selected and judged: the selection metric, bootstrap intervals, trading costs."""

    select_on: str = Field(
        "auto", min_length=1, description="Validation measure that picks the best epoch (early stopping "
        "and best.pt): auto (the task's primary metric: auc for threshold and direction, mse for "
        "return), loss, or a metric name (auc, accuracy, brier, log_loss; mse, mae, dir_acc).",
    )
    bootstrap: int = Field(
        1000, ge=100, le=100_000, description="Moving-block bootstrap resamples of the test dates "
        "(drawn from train.seed)."
    )
    block_days: int | None = Field(
        None, ge=1, le=2520, description="Bootstrap block length in dates; default max(target.horizon, 20)."
    )
    ci: float = Field(0.95, gt=0.5, lt=1, description="Coverage of the percentile intervals.")
    cost_bps: float = Field(5.0, ge=0, le=1000, description="Trading cost in basis points per unit of turnover.")


class ThermalConfig(Section):
    """Temperature source and the pause/resume/stop policy (degrees C, seconds)."""

    source: str = Field("auto", description="auto, none, macos, linux, nvidia, command:CMD, replay:PATH")
    json_field: str | None = Field(
        None, description="Dotted JSON field a command: source reads, e.g. temp.cpu_temp_avg."
    )
    interval_s: float = Field(1.0, gt=0, le=3600)
    acceptable_c: float = Field(70.0, gt=0, description="Start of the acceptable band.")
    warning_c: float = Field(85.0, gt=0, description="Start of the warning band.")
    critical_c: float = Field(95.0, gt=0, description="Above this: checkpoint and stop.")
    resume_c: float = Field(80.0, gt=0, description="Resume at or below this after a pause.")
    smoothing_s: float = Field(5.0, ge=0)
    dwell_s: float = Field(30.0, ge=0, description="Time in the warning band before pausing.")
    critical_dwell_s: float = Field(3.0, ge=0)
    max_pause_s: float = Field(900.0, gt=0, description="Total pause time before stopping.")
    require_sensor: bool = Field(
        False, description="Refuse to train without a temperature reading (a pressure level alone is not one)."
    )

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        name, sep, arg = v.strip().partition(":")
        if name.lower() in ("command", "replay") and arg.strip():
            return v.strip()
        if not sep and name.lower() in ("auto", "none", "macos", "linux", "nvidia"):
            return name.lower()
        raise ValueError(
            "must be auto, none, macos, linux, nvidia, command:CMD or replay:PATH[?speed=N]"
        )

    @model_validator(mode="after")
    def _ordered(self) -> ThermalConfig:
        if self.require_sensor and self.source == "none":
            raise ValueError("require_sensor=true needs a thermal source other than none")
        if not self.acceptable_c < self.warning_c < self.critical_c:
            raise ValueError(
                f"bands must rise: acceptable_c={self.acceptable_c} < warning_c={self.warning_c} "
                f"< critical_c={self.critical_c}"
            )
        if self.resume_c >= self.warning_c:
            raise ValueError(
                f"resume_c={self.resume_c} must be below warning_c={self.warning_c} (hysteresis)"
            )
        return self


class ProbeConfig(Section):
    """Batch-size probing."""

    min_batch: int = Field(8, ge=1, description="First batch size tried.")
    max_batch: int = Field(4096, ge=1, description="Largest batch size tried.")
    search: Literal["power", "binsearch"] = Field(
        "power", description="power: double until a size fails; binsearch: then bisect the gap."
    )
    steps: int = Field(3, ge=1, le=100, description="Timed training steps per size (after a warm-up).")
    plateau: int = Field(
        2, ge=0, le=20, description="Stop doubling once this many sizes in a row each fail to beat "
        "the fastest so far by 5% samples/s: past the point where a batch fills the device, a "
        "larger one trains no faster and every trial of it costs twice the last; 0: double until "
        "a size fails or max_batch."
    )
    memory_fraction: float = Field(
        0.8, gt=0, le=1, description="A size whose peak memory exceeds this share of the device's "
        "memory does not fit, even without an out-of-memory error."
    )
    finalists: int = Field(
        3, ge=1, le=8, description="After the search, this many of the fastest fitting sizes are "
        "timed again in interleaved rounds and the pick is the fastest by the median of its "
        "measurements, so a burst of load during one size's trial cannot decide it; 1: no re-timing."
    )
    retime_rounds: int = Field(
        2, ge=1, le=10, description="Rounds of the re-timing; each gives every finalist a fresh "
        "model, a warm-up and one timed step, in an order reversed every round (A B C, C B A)."
    )

    @model_validator(mode="after")
    def _range(self) -> ProbeConfig:
        if self.min_batch > self.max_batch:
            raise ValueError(f"min_batch={self.min_batch} is above max_batch={self.max_batch}")
        return self


class RunConfig(Section):
    """Everything one run needs; serialisable to JSON and TOML."""

    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    target: TargetConfig = TargetConfig()
    split: SplitConfig = SplitConfig()
    model: ModelChoice = ModelChoice()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    thermal: ThermalConfig = ThermalConfig()
    probe: ProbeConfig = ProbeConfig()

    @model_validator(mode="after")
    def _select_on_fits_task(self) -> RunConfig:
        kind = "classification" if self.target.task in ("threshold", "direction") else "regression"
        allowed = ("auto", "loss", *SELECTABLE_METRICS[kind])
        if self.eval.select_on not in allowed:
            raise ValueError(
                f"eval.select_on={self.eval.select_on!r} is not a validation measure of "
                f"target.task={self.target.task}; choose one of {', '.join(allowed)}"
            )
        return self

    @property
    def block_days(self) -> int:
        """The bootstrap block length: eval.block_days, else max(target.horizon, 20)."""
        return self.eval.block_days or max(self.target.horizon, 20)


def read_universe(path: Path) -> str:
    """A universe file (one ticker per line; blank lines and # comments ignored) as SPY,QQQ,..."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"universe file not found: {path}")
    tickers = []
    for line in path.read_text(encoding="utf-8").splitlines():
        ticker = line.split("#", 1)[0].strip()
        if ticker:
            tickers.append(ticker)
    if not tickers:
        raise ConfigError(f"universe file {path} lists no tickers")
    return ",".join(tickers)


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` recursively; values in ``extra`` win."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Nested overrides from ``FINTRAIN_SECTION__FIELD`` variables (values stay strings)."""
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):]
        if key in RESERVED_ENV or not key:
            continue
        parts = [p.lower() for p in key.split("__")]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name} conflicts with another FINTRAIN_ variable")
        node[parts[-1]] = value
    return out


# Run and sweep names become folder names under --runs-dir: no '/', no leading '.', nothing that
# could climb out of it or name an absolute path.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
MAX_RUN_NAME_CHARS = 100


def check_run_name(name: str, what: str = "--run-name") -> str:
    """A run or sweep name that is a safe folder name under ``--runs-dir``, else a ConfigError."""
    if len(name) > MAX_RUN_NAME_CHARS:
        raise ConfigError(f"{what} is {len(name)} characters long; use at most {MAX_RUN_NAME_CHARS}")
    if not RUN_NAME.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r}: use letters, digits, '-', '_' and '.', starting with a letter or digit "
            "(no '/', '..' or absolute path: a run is a folder inside --runs-dir)"
        )
    return name


def read_toml(path: Path) -> dict[str, Any]:
    """A config file's contents; a missing or malformed file is a ConfigError."""
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder, not a TOML file; give the file inside it")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def field_spellings(loc: tuple[Any, ...]) -> dict[str, str]:
    """The fields of the section at ``loc`` (``("train",)``; ``()`` for the sections), each under
    its name and under each pair of words of its description, so that a key named by its meaning
    finds it (``learning_rate`` -> ``lr``, "Peak learning rate")."""
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return {}
        model = field.annotation
    spellings = {name: name for name in model.model_fields}
    for name, field in model.model_fields.items():
        words = re.findall(r"[a-z]+", (field.description or "").lower())
        for first, second in zip(words, words[1:]):
            spellings.setdefault(f"{first}_{second}", name)
    return spellings


def describe_validation_error(exc: ValidationError, origin: str = "configuration") -> str:
    """One line naming each invalid field and why."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field" + did_you_mean(str(err["loc"][-1]), field_spellings(err["loc"][:-1]))
        value = err.get("input")
        said = err["type"] in ("extra_forbidden", "missing") or isinstance(value, dict) or "got " in msg
        shown = "" if said else f" (got {value!r})"
        problems.append(f"{field}: {msg}{shown}")
    return f"invalid {origin}: " + "; ".join(problems)


def validate_config(data: Mapping[str, Any], origin: str = "configuration") -> RunConfig:
    """``RunConfig.model_validate`` with errors turned into a ConfigError."""
    try:
        return RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, origin)) from exc


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunConfig:
    """Defaults, then the TOML file, then FINTRAIN_* variables, then ``overrides``.

    Args:
        path: a TOML file holding (part of) a RunConfig; it must exist when given.
        overrides: nested values from the command line; None values are ignored.
        environ: the environment to read (``os.environ`` by default).
    """
    merged: dict[str, Any] = {}
    if path is not None:
        file_data = read_toml(Path(path))
        validate_config(file_data, origin=f"config file {path}")
        merged = deep_merge(merged, file_data)
    env = env_overrides(environ)
    if env:
        validate_config(deep_merge(merged, env), origin="FINTRAIN_* environment variables")
        merged = deep_merge(merged, env)
    if overrides:
        merged = deep_merge(merged, drop_none(overrides))
    return validate_config(merged)


def drop_none(data: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dict without the keys whose value is None (options not given)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            inner = drop_none(value)
            if inner:
                out[key] = inner
        elif value is not None:
            out[key] = value
    return out
