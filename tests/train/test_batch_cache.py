"""The probe cache: stored per device, model config and data shape; read back by train."""

from __future__ import annotations

import json
import logging

import platformdirs
import torch

from fintrain.model import budget_config
from fintrain.probe import (
    ProbeResult,
    Trial,
    cache_dir,
    cache_path,
    lookup_batch_size,
    store_result,
)

CPU = torch.device("cpu")


def result(recommended=128, largest=512):
    trials = (Trial(128, "ok", 900.0, 10**8), Trial(512, "ok", 700.0, 4 * 10**8))
    return ProbeResult("cpu (2 threads)", trials, recommended, largest, "why")


def model(**kw):
    return budget_config("2m", **{"n_channels": 20, "context_len": 60, **kw})


def test_round_trip_in_the_cache_folder(cache_dir):
    path = store_result(CPU, model(), result(), n_train=5000)
    assert path is not None and path.is_relative_to(cache_dir)
    assert lookup_batch_size(CPU, model()) == 128
    document = json.loads(path.read_text())
    assert document["result"]["recommended"] == 128
    assert document["key"]["model"]["d_model"] == 192 and document["n_train"] == 5000


def test_another_model_or_data_shape_is_a_miss(cache_dir):
    store_result(CPU, model(), result(), n_train=5000)
    assert lookup_batch_size(CPU, model(d_model=96, n_heads=4)) is None
    assert lookup_batch_size(CPU, model(context_len=120)) is None
    assert lookup_batch_size(CPU, model(n_channels=50)) is None
    assert lookup_batch_size(CPU, budget_config("20m")) is None
    assert lookup_batch_size(torch.device("meta"), model()) is None


def test_a_newer_probe_replaces_the_older(cache_dir):
    store_result(CPU, model(), result(recommended=128), n_train=5000)
    store_result(CPU, model(), result(recommended=64, largest=64), n_train=5000)
    assert lookup_batch_size(CPU, model()) == 64


def test_training_set_smaller_than_the_cached_size_lowers_it(cache_dir):
    store_result(CPU, model(), result(recommended=512), n_train=5000)
    assert lookup_batch_size(CPU, model(), n_train=300) == 300
    assert lookup_batch_size(CPU, model(), n_train=9000) == 512


def test_nothing_cached_when_nothing_fit(cache_dir):
    assert store_result(CPU, model(), result(recommended=None, largest=None), n_train=10) is None
    assert lookup_batch_size(CPU, model()) is None
    assert not cache_dir.exists()


def test_damaged_cache_file_is_a_miss_with_a_warning(cache_dir, caplog):
    path = cache_path(CPU, model())
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert lookup_batch_size(CPU, model()) is None
    assert "unreadable probe cache" in caplog.text
    path.write_text(json.dumps({"key": {"device": "other"}, "result": {"recommended": 8}}))
    assert lookup_batch_size(CPU, model()) is None


def test_cache_folder_defaults_to_the_user_cache(monkeypatch):
    monkeypatch.delenv("FINTRAIN_CACHE_DIR", raising=False)
    assert cache_dir() == platformdirs.user_cache_path("fintrain")



def test_precision_is_part_of_the_key(cache_dir):
    store_result(CPU, model(), result(recommended=512), n_train=5000, precision="bf16")
    assert lookup_batch_size(CPU, model()) is None  # an fp32 run does not take a bf16 pick
    assert lookup_batch_size(CPU, model(), precision="bf16") == 512
    store_result(CPU, model(), result(recommended=128), n_train=5000)
    assert lookup_batch_size(CPU, model()) == 128
    assert lookup_batch_size(CPU, model(), precision="bf16") == 512
