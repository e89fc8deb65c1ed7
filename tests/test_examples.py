"""Every example config loads and names a known budget and tier."""

from pathlib import Path

import pytest

from fintrain.config import load_config
from fintrain.train.run import check_names

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_is_valid(path):
    cfg = load_config(path, environ={})
    check_names(cfg)
