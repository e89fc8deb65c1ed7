"""``fintrain probe-batch`` through the real CLI: a tiny PatchTST on CPU over the offline MSFT
sample, with the cache in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fintrain.cli import app

# A model small enough that a probe of a few sizes takes seconds on a shared CPU.
TINY = """
[data]
ticker = "MSFT"
source = "sample"
[model]
d_model = 16
n_heads = 2
n_layers = 1
d_ff = 32
[probe]
steps = 1
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with MSFT's raw data and a20 features, built once for the module."""
    root = tmp_path_factory.mktemp("probe-cli")
    (root / "tiny.toml").write_text(TINY)
    result = CliRunner().invoke(app, ["--data-dir", str(root / "data"), "data", "fetch", "MSFT",
                                      "--source", "sample"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["--data-dir", str(root / "data"), "features", "build", "MSFT",
                                      "--tier", "a20"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("FINTRAIN_CACHE_DIR", str(folder))
    return folder


def fintrain(workspace: Path, *args: str):
    argv = ["--data-dir", str(workspace / "data"), "--runs-dir", str(workspace / "runs"), *args]
    return CliRunner().invoke(app, argv, catch_exceptions=False)


def probe(workspace: Path, *args: str):
    return fintrain(workspace, "probe-batch", "--config", str(workspace / "tiny.toml"),
                    "--device", "cpu", *args)


@pytest.mark.slow
def test_json_document_alone_on_stdout(workspace, cache):
    result = probe(workspace, "--max-batch", "32", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["device"].startswith("cpu")
    trials = doc["trials"]
    assert [t["batch_size"] for t in trials] == [8, 16, 32]
    for t in trials:
        assert set(t) == {"batch_size", "samples_per_s", "peak_memory_bytes", "status"}
        assert t["status"] == "ok"
        assert t["samples_per_s"] > 0 and t["peak_memory_bytes"] >= 0
    # The three sizes that fit are all finalists: the pick is the fastest as re-timed.
    retiming = doc["retiming"]
    assert retiming["rounds"] == 2 and retiming["order"] == [[8, 16, 32], [32, 16, 8]]
    finalists = {f["batch_size"]: f for f in retiming["finalists"]}
    assert set(finalists) == {8, 16, 32}
    for t in trials:
        assert finalists[t["batch_size"]]["search_samples_per_s"] == t["samples_per_s"]
        assert finalists[t["batch_size"]]["samples_per_s"] > 0
    fastest = max(finalists.values(), key=lambda f: f["samples_per_s"])["batch_size"]
    assert doc["recommended"] == fastest
    assert doc["largest_fit"] == 32
    assert doc["stopped_on_plateau"] is False  # 32 is --max-batch: nothing was left to try
    assert "re-timed against" in doc["reason"]
    assert isinstance(doc["reason"], str) and doc["memory_budget_bytes"] > 0
    # Progress and the cache note went to stderr.
    assert "batch 8: ok" in result.stderr
    assert "re-timed batch 32:" in result.stderr
    # Each re-timing visit is a line as it starts, in the interleaved order; then where the pick went.
    visits = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("re-timing round")]
    assert visits == [f"re-timing round {r}/2: batch {b}..." for r, b in
                      [(1, 8), (1, 16), (1, 32), (2, 32), (2, 16), (2, 8)]]
    (cached,) = list((cache / "probe").glob("*.json"))
    assert (f"the pick (batch size {doc['recommended']}) is cached in {cached}; `fintrain train --batch-size auto` "
            "uses it") in " ".join(result.stderr.split())
    assert len(list((cache / "probe").glob("*.json"))) == 1


@pytest.mark.slow
def test_train_batch_size_auto_uses_the_probe(workspace, cache):
    planned = fintrain(workspace, "train", "--config", str(workspace / "tiny.toml"), "--device", "cpu",
                       "--batch-size", "auto", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    before = json.loads(planned.stdout)
    assert before["batch_size_origin"].startswith("default")
    probed = probe(workspace, "--min-batch", "4", "--max-batch", "24", "--json")
    assert probed.exit_code == 0, probed.output
    recommended = json.loads(probed.stdout)["recommended"]
    planned = fintrain(workspace, "train", "--config", str(workspace / "tiny.toml"), "--device", "cpu",
                       "--batch-size", "auto", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    after = json.loads(planned.stdout)
    assert after["batch_size"] == recommended and after["batch_size_origin"] == "probe-batch cache"
    # Another model is another key: it still gets the default.
    other = fintrain(workspace, "train", "--config", str(workspace / "tiny.toml"), "--device", "cpu",
                     "--context-len", "30", "--batch-size", "auto", "--dry-run", "--json")
    assert json.loads(other.stdout)["batch_size_origin"].startswith("default")
    # So is another precision: a bf16 run is not handed the fp32 pick, until it is probed.
    bf16 = ("train", "--config", str(workspace / "tiny.toml"), "--device", "cpu", "--precision", "bf16",
            "--batch-size", "auto", "--dry-run", "--json")
    assert json.loads(fintrain(workspace, *bf16).stdout)["batch_size_origin"].startswith("default")
    probed = probe(workspace, "--precision", "bf16", "--min-batch", "4", "--max-batch", "8", "--json")
    assert probed.exit_code == 0, probed.output
    planned = json.loads(fintrain(workspace, *bf16).stdout)
    assert planned["batch_size"] == json.loads(probed.stdout)["recommended"]
    assert planned["batch_size_origin"] == "probe-batch cache"


@pytest.mark.slow
def test_table_and_recommendation(workspace, cache):
    result = probe(workspace, "--max-batch", "16")
    assert result.exit_code == 0, result.output
    assert "batch size" in result.stdout and "samples/s" in result.stdout
    # Both sizes fit, so both were re-timed; the reason names the one that lost.
    loser = 8 if "recommended batch size: 16" in result.stdout else 16
    assert "re-timed" in result.stdout
    assert f"re-timed against {loser} in 2 interleaved rounds" in result.stdout
    assert "recommended batch size:" in result.stdout and "largest that fits: 16" in result.stdout
    assert "max_batch is 16" in result.stdout
    assert "memory cap:" in result.stdout and "(80% of" in result.stdout


@pytest.mark.slow
def test_memory_cap_below_the_smallest_size_fails_with_one_line(workspace, cache):
    # A millionth of the available memory is a few kilobytes: no size fits under the cap.
    result = probe(workspace, "--max-batch", "16", "--memory-fraction", "0.000001", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["recommended"] is None and doc["largest_fit"] is None
    assert [t["status"] for t in doc["trials"]] == ["over_cap"]
    # ProbeError: one line on stderr (after the progress lines), exit 1, no traceback.
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: no batch size fits: 8 peaked at")
    assert errors[0].endswith("or a higher --memory-fraction")
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]
    assert "Traceback" not in result.stderr
    assert not (cache / "probe").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--search", "golden"], 2, "probe.search"),
        (["--min-batch", "64", "--max-batch", "8"], 2, "min_batch=64 is above max_batch=8"),
        (["--memory-fraction", "1.5"], 2, "probe.memory_fraction"),
        (["--finalists", "0"], 2, "probe.finalists"),
        (["--retime-rounds", "11"], 2, "probe.retime_rounds"),
        (["--plateau", "-1"], 2, "probe.plateau"),
        (["--budget", "7b"], 2, "unknown model budget '7b'"),
    ],
)
def test_bad_options_are_one_clear_line(workspace, cache, args, code, message):
    result = probe(workspace, *args)
    assert result.exit_code == code
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_universe_probes_the_pooled_windows_and_train_finds_the_pick(workspace, cache, tmp_path):
    # AAPL and IBM (offline samples, fetched and built by the probe) hold 1,906 training windows
    # each. A batch of 2,000 exists only in their pooled training set, which is what
    # `train --universe` trains on.
    universe = tmp_path / "universe.txt"
    universe.write_text("AAPL\nIBM  # a comment\n\n")
    probed = probe(workspace, "--universe", str(universe), "--min-batch", "2000", "--max-batch", "2000",
                   "--json")
    assert probed.exit_code == 0, probed.output
    doc = json.loads(probed.stdout)
    assert doc["tickers"] == ["AAPL", "IBM"] and doc["n_train"] == 2 * 1906
    assert [t["batch_size"] for t in doc["trials"]] == [2000] and doc["recommended"] == 2000
    assert "fetching it from sample" in probed.stderr and "2 tickers (AAPL, IBM)" in probed.stderr

    def planned(*args: str) -> dict:
        result = fintrain(workspace, "train", "--config", str(workspace / "tiny.toml"), "--device", "cpu",
                          *args, "--batch-size", "auto", "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    plan = planned("--universe", str(universe))
    assert plan["data"]["windows"]["train"] == doc["n_train"]
    assert plan["batch_size"] == 2000 and plan["batch_size_origin"] == "probe-batch cache"
    # The entry is per device and model, not per ticker list: one ticker's run (same model)
    # finds it too, lowered to its smaller training set.
    single = planned("--ticker", "MSFT")
    assert single["batch_size"] == 1906 and single["batch_size_origin"] == "probe-batch cache"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--universe", "missing.txt"], "universe file not found"),
        (["--universe", "universe.txt", "--ticker", "SPY"], "give TICKER or --universe, not both"),
    ],
)
def test_bad_universe_is_one_clear_line(workspace, cache, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "universe.txt").write_text("AAPL\n")
    result = probe(workspace, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
