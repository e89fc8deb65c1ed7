"""Configuration: precedence, validation messages, and the CLI's exit code 2."""

from __future__ import annotations

import pytest

from fintrain.config import RunConfig, load_config
from fintrain.errors import ConfigError


def test_defaults_validate_and_are_frozen():
    cfg = load_config(environ={})
    assert cfg == RunConfig()
    with pytest.raises(Exception):
        cfg.train.lr = 1.0  # type: ignore[misc]


def test_precedence_file_then_env_then_cli(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nlr = 0.01\nepochs = 3\nseed = 5\n[data]\nticker = "msft"\n')
    env = {"FINTRAIN_TRAIN__LR": "0.02", "FINTRAIN_TRAIN__EPOCHS": "4"}
    cfg = load_config(path, {"train": {"lr": 0.03, "epochs": None}}, environ=env)
    assert cfg.train.lr == 0.03  # command line wins
    assert cfg.train.epochs == 4  # environment beats the file; a None option is "not given"
    assert cfg.train.seed == 5  # the file beats defaults
    assert cfg.data.ticker == "MSFT"


def test_invalid_values_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.lr: Input should be greater than 0 \(got -1\.0\)"):
        load_config(overrides={"train": {"lr": -1.0}}, environ={})
    with pytest.raises(ConfigError, match=r"FINTRAIN_\* environment variables: train\.epochs"):
        load_config(environ={"FINTRAIN_TRAIN__EPOCHS": "many"})
    with pytest.raises(ConfigError, match="resume_c=90.0 must be below warning_c=85.0"):
        load_config(overrides={"thermal": {"resume_c": 90.0}}, environ={})


def test_unknown_field_and_missing_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"config file .*bad\.toml: train\.learning_rate: unknown field; did you mean lr\?$"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", environ={})
    (tmp_path / "broken.toml").write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml", environ={})


@pytest.mark.parametrize(
    "toml, message",
    [
        ("[train]\nepoch = 3\n", "train.epoch: unknown field; did you mean epochs?"),
        ("[train]\nbatchsize = 32\n", "train.batchsize: unknown field; did you mean batch_size?"),
        ("[trian]\nlr = 0.1\n", "trian: unknown field; did you mean train?"),
        ("[model]\nlayers = 2\n", "model.layers: unknown field; did you mean n_layers?"),
        ("[train]\ncolour = 1\n", "train.colour: unknown field"),
    ],
)
def test_an_unknown_key_gets_the_closest_field(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert str(raised.value).endswith(f": {message}")


def test_an_unknown_environment_variable_gets_the_closest_field():
    with pytest.raises(ConfigError, match=r"train\.learning_rate: unknown field; did you mean lr\?"):
        load_config(environ={"FINTRAIN_TRAIN__LEARNING_RATE": "0.1"})


def test_budget_names_are_stored_in_one_case():
    assert load_config(overrides={"model": {"budget": " 20M "}}, environ={}).model.budget == "20m"


def test_cli_rejects_invalid_config_with_exit_2(cli, tmp_path, folder_snapshot):
    result = cli("data", "fetch", "MSFT", "--source", "sample", env={"FINTRAIN_DATA__MIN_ROWS": "0"})
    assert result.exit_code == 2
    assert "data.min_rows" in result.stderr
    missing = cli("data", "fetch", "MSFT", "--source", "sample", "--config", str(tmp_path / "x.toml"))
    assert missing.exit_code == 2 and "config file not found" in missing.stderr
    assert folder_snapshot(cli.data_dir) == {}


def test_cli_version_and_help(cli):
    from fintrain import __version__

    assert cli("--version").stdout.strip() == f"fintrain {__version__}"
    for args in (["--help"], ["data", "--help"], ["data", "fetch", "--help"], ["data", "import", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0 and "Example" in result.stdout


def test_debug_shows_traceback(cli):
    with pytest.raises(Exception, match="the sample source has no ZZZ"):
        cli("--debug", "data", "fetch", "ZZZ", "--source", "sample")


def test_eval_section_defaults_and_select_on_per_task():
    cfg = load_config(environ={})
    assert (cfg.eval.select_on, cfg.eval.bootstrap, cfg.eval.ci, cfg.eval.cost_bps) == ("auto", 1000, 0.95, 5.0)
    assert cfg.block_days == 20  # max(horizon 1, 20)
    assert load_config(overrides={"target": {"horizon": 30}}, environ={}).block_days == 30
    assert load_config(overrides={"eval": {"block_days": 5}}, environ={}).block_days == 5
    assert load_config(overrides={"eval": {"select_on": "log_loss"}}, environ={}).eval.select_on == "log_loss"
    with pytest.raises(ConfigError, match=r"eval\.select_on='auc' is not a validation measure of target\.task=return"):
        load_config(overrides={"target": {"task": "return"}, "eval": {"select_on": "auc"}}, environ={})
    with pytest.raises(ConfigError, match=r"eval\.bootstrap"):
        load_config(overrides={"eval": {"bootstrap": 10}}, environ={})
    with pytest.raises(ConfigError, match=r"eval\.seed: unknown field"):
        load_config(overrides={"eval": {"seed": 1}}, environ={})


def test_choices_are_accepted_in_any_case(cli):
    cfg = load_config(overrides={"data": {"source": "Sample"}, "target": {"task": "Direction"},
                                 "train": {"device": "CPU", "batch_size": "AUTO", "precision": "BF16"}}, environ={})
    assert (cfg.data.source, cfg.target.task, cfg.train.device, cfg.train.batch_size, cfg.train.precision) == (
        "sample", "direction", "cpu", "auto", "bf16")
    with pytest.raises(ConfigError, match=r"data\.source: Input should be 'yahoo' or 'sample' \(got 'yahooo'\)"):
        load_config(overrides={"data": {"source": "yahooo"}}, environ={})
    result = cli("data", "fetch", "MSFT", "--source", "Sample")
    assert result.exit_code == 0 and "source sample" in result.stderr
