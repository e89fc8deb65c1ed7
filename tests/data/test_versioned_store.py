"""Versioned storage: every version its own file, crashes and races that lose nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from fintrain.data import import_file, raw_manifest, read_raw, verify
from fintrain.errors import ManifestError
from fintrain.storage import md5_file


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """A vendor-style CSV of an OHLCV frame."""
    frame.write_csv(path)
    return path


def current(data_dir: Path, ticker: str = "SPY") -> dict:
    return raw_manifest(data_dir).latest("dataset", f"{ticker}.OHLCV.daily")


def write_old_layout(data_dir: Path, ticker: str, frames: list[pl.DataFrame]) -> list[dict]:
    """A data folder as fintrain wrote it before versioned storage: one overwritten file.

    Each frame was imported in turn; only the last one's bytes are still on disk.
    """
    raw = data_dir / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    path = raw / f"{ticker}.parquet"
    entries = []
    for frame in frames:
        frame.write_parquet(path, statistics=True)
        entries.append({
            "dataset": f"{ticker}.OHLCV.daily", "path": f"raw/{ticker}.parquet", "md5": md5_file(path),
            "rows": frame.height, "first_date": str(frame["date"][0]), "last_date": str(frame["date"][-1]),
            "source": "import:old.csv", "adjusted": True, "created_at": "2026-01-01T00:00:00+00:00",
        })
    (raw / "manifest.json").write_text(json.dumps({"schema_version": 1, "entries": entries}))
    return entries


@pytest.fixture
def clean(msft: pl.DataFrame) -> pl.DataFrame:
    """MSFT as the store keeps it (date, open, high, low, close, volume), 400 rows."""
    return msft.head(400).select("date", "open", "high", "low", "close", "volume").with_columns(
        pl.col("date").str.to_date("%Y-%m-%d")
    )


def test_each_import_is_its_own_file_and_the_newest_entry_is_current(tmp_path, msft):
    data_dir = tmp_path / "data"
    first = import_file(data_dir, write_csv(msft.head(300), tmp_path / "a.csv"), "SPY")
    second = import_file(data_dir, write_csv(msft.head(350), tmp_path / "b.csv"), "SPY")
    assert first["path"] == f"raw/SPY/{first['md5']}.parquet"
    assert second["path"] == f"raw/SPY/{second['md5']}.parquet" and second["version"] == 2
    assert md5_file(data_dir / first["path"]) == first["md5"]
    frame, entry = read_raw(data_dir, "SPY")
    assert entry == second and frame.height == 350
    old, old_entry = read_raw(data_dir, "SPY", first["md5"])
    assert old.height == 300 and old_entry == first
    assert [r.status for r in verify(data_dir)] == ["OK", "OK"]


@pytest.mark.parametrize(
    "document, message",
    [
        ("{not json", "is not valid JSON"),
        ('{"schema_version": 2, "entries": [{"dataset": "SPY.OHLCV.daily", "md5": "x"}]}', "entry 1 has no 'path'"),
        ('{"schema_version": 2, "entries": [{"dataset": "SPY.OHLCV.daily", "path": 3, "md5": "x"}]}',
         "entry 1 has 'path' of type int, expected a string"),
        ('{"schema_version": 2, "entries": ["raw/SPY.parquet"]}', "entry 1 is str, not an object"),
        ('{"schema_version": 2, "entries": [{"dataset": "S", "path": "../../etc/x", "md5": "x"}]}',
         "outside the data folder"),
    ],
)
def test_a_bad_manifest_stops_an_import_before_anything_is_written(tmp_path, msft, cli, document, message):
    assert cli("data", "import", str(write_csv(msft.head(300), tmp_path / "a.csv")), "--ticker", "SPY").exit_code == 0
    manifest = cli.data_dir / "raw" / "manifest.json"
    manifest.write_text(document)
    before = snapshot(cli.data_dir)
    result = cli("data", "import", str(write_csv(msft.head(320), tmp_path / "b.csv")), "--ticker", "SPY")
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 or message in result.stderr.replace("\n", "")
    assert snapshot(cli.data_dir) == before


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_old_layout_reads_and_migrates_on_first_write_with_nothing_lost(tmp_path, clean, cli, msft):
    old_entries = write_old_layout(cli.data_dir, "SPY", [clean.head(300), clean])
    old_bytes = (cli.data_dir / "raw" / "SPY.parquet").read_bytes()
    frame, entry = read_raw(cli.data_dir, "SPY")
    assert frame.equals(clean) and entry == old_entries[-1]
    assert cli("data", "verify").exit_code == 0
    result = cli("data", "import", str(write_csv(msft.head(320), tmp_path / "new.csv")), "--ticker", "SPY")
    assert result.exit_code == 0, result.output
    document = json.loads((cli.data_dir / "raw" / "manifest.json").read_text())
    assert document["schema_version"] == 2
    overwritten, migrated, new = document["entries"]
    # The version the old layout had already overwritten stays in the history, marked not kept.
    assert overwritten["md5"] == old_entries[0]["md5"] and overwritten["kept"] is False
    assert migrated["md5"] == old_entries[1]["md5"] and "kept" not in migrated
    assert migrated["path"] == f"raw/SPY/{migrated['md5']}.parquet"
    assert (cli.data_dir / migrated["path"]).read_bytes() == old_bytes
    assert not (cli.data_dir / "raw" / "SPY.parquet").exists()
    assert new["rows"] == 320 and current(cli.data_dir) == new
    assert read_raw(cli.data_dir, "SPY", migrated["md5"])[0].equals(clean)
    assert cli("data", "verify").exit_code == 0


def test_verify_reports_untracked_files_without_failing(cli, tmp_path, msft):
    assert cli("data", "import", str(write_csv(msft.head(300), tmp_path / "a.csv")), "--ticker", "SPY").exit_code == 0
    stray = cli.data_dir / "raw" / "SPY" / ("0" * 32 + ".parquet")
    stray.write_bytes(b"left by a crash")
    result = cli("data", "verify")
    assert result.exit_code == 0
    assert "UNTRACKED" in result.stdout and "1 untracked file" in result.stderr
    assert f"raw/SPY/{stray.name}" in result.stderr


def write_run(runs_dir: Path, name: str, ticker: str, data: dict | None) -> None:
    run = runs_dir / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"data": {"ticker": ticker}}))
    if data is not None:
        (run / "data.json").write_text(json.dumps(data))


def test_versions_lists_runs_and_prune_keeps_what_runs_use(cli, tmp_path, msft):
    entries = []
    for rows in (300, 310, 320, 330):
        assert cli("data", "import", str(write_csv(msft.head(rows), tmp_path / f"{rows}.csv")), "--ticker", "SPY").exit_code == 0
        entries.append(current(cli.data_dir))
    write_run(cli.runs_dir, "run-a", "SPY", {"raw": {"SPY": entries[0]["md5"]}, "features": {}})
    listed = json.loads(cli("data", "versions", "SPY", "--json").stdout)
    assert [(v["rows"], v["runs"], v["current"]) for v in listed] == [
        (300, ["run-a"], False), (310, [], False), (320, [], False), (330, [], True)
    ]
    before = snapshot(cli.data_dir)
    dry = cli("data", "prune", "--keep", "2", "--dry-run")
    assert dry.exit_code == 0
    assert f"would delete {entries[1]['path']}" in dry.stdout and f"kept {entries[0]['path']}: used by run-a" in dry.stdout
    assert "would free" in dry.stderr and snapshot(cli.data_dir) == before
    done = cli("data", "prune", "--keep", "2")
    assert done.exit_code == 0 and "freed" in done.stderr
    size = len(before[str(Path(entries[1]["path"]))])
    assert f"deleted {entries[1]['path']}" in done.stdout and str(size) in done.stderr or "KiB" in done.stderr
    kept = {e["md5"] for e in entries if (cli.data_dir / e["path"]).is_file()}
    assert kept == {entries[0]["md5"], entries[2]["md5"], entries[3]["md5"]}
    assert cli("data", "verify").exit_code == 0
    listed = json.loads(cli("data", "versions", "SPY", "--json").stdout)
    assert [v["on_disk"] for v in listed] == [True, False, True, True]


def test_prune_keeps_every_version_of_a_ticker_whose_run_recorded_none(cli, tmp_path, msft):
    for rows in (300, 310):
        cli("data", "import", str(write_csv(msft.head(rows), tmp_path / f"{rows}.csv")), "--ticker", "SPY")
    write_run(cli.runs_dir, "old-run", "SPY", None)
    result = cli("data", "prune", "--keep", "1")
    assert result.exit_code == 0 and "used by old-run" in result.stdout
    assert len(list((cli.data_dir / "raw" / "SPY").iterdir())) == 2


def test_prune_refuses_keep_0(cli):
    result = cli("data", "prune", "--keep", "0")
    assert result.exit_code == 2 and "always kept" in result.stderr


# --- fault injection ------------------------------------------------------------------------


def _check_after_kill(cli, previous: dict, new_rows: int):
    """After a kill: the previous version intact, verify passes (current is old or complete new)."""
    assert (cli.data_dir / previous["path"]).is_file()
    assert md5_file(cli.data_dir / previous["path"]) == previous["md5"]
    now = current(cli.data_dir)
    assert now == previous or now["rows"] == new_rows
    result = cli("data", "verify")
    assert result.exit_code == 0, result.output


def _kill_test(cli, kill_at_each_step, tmp_path, action, rerun, previous, new_rows):
    baseline = tmp_path / "baseline"
    shutil.copytree(cli.data_dir, baseline)

    def reset():
        shutil.rmtree(cli.data_dir)
        shutil.copytree(baseline, cli.data_dir)

    def check(n):
        _check_after_kill(cli, previous, new_rows)
        again = rerun()
        assert again.exit_code == 0, (n, again.output)
        assert current(cli.data_dir)["rows"] == new_rows
        assert cli("data", "verify").exit_code == 0

    return kill_at_each_write_step_count(kill_at_each_step, action, reset, check)


def kill_at_each_write_step_count(kill_at_each_step, action, reset, check) -> int:
    points = kill_at_each_step(action, reset, check)
    # At least: the version's temporary file (created, written, synced, renamed, folder synced)
    # and then the manifest's.
    assert points >= 10
    return points


def test_import_killed_at_every_write_step_loses_nothing(cli, tmp_path, msft, kill_at_each_step):
    assert cli("data", "import", str(write_csv(msft.head(300), tmp_path / "a.csv")), "--ticker", "SPY").exit_code == 0
    previous = current(cli.data_dir)
    new = write_csv(msft.head(333), tmp_path / "b.csv")
    _kill_test(
        cli, kill_at_each_step, tmp_path, ["import", str(cli.data_dir), str(new), "SPY"],
        lambda: cli("data", "import", str(new), "--ticker", "SPY"), previous, 333,
    )


def test_import_into_an_old_layout_killed_at_every_step_loses_nothing(cli, tmp_path, clean, msft, kill_at_each_step):
    write_old_layout(cli.data_dir, "SPY", [clean])
    old_bytes = (cli.data_dir / "raw" / "SPY.parquet").read_bytes()
    new = write_csv(msft.head(333), tmp_path / "b.csv")
    baseline = tmp_path / "baseline"
    shutil.copytree(cli.data_dir, baseline)

    def reset():
        shutil.rmtree(cli.data_dir)
        shutil.copytree(baseline, cli.data_dir)

    def check(n):
        frame, entry = read_raw(cli.data_dir, "SPY")
        assert frame.equals(clean) or entry["rows"] == 333
        kept = [p for p in (cli.data_dir / "raw").rglob("*.parquet") if p.read_bytes() == old_bytes]
        assert kept, f"the old version is gone after a kill at step {n}"
        old_md5 = md5_file(kept[0])
        assert cli("data", "verify").exit_code == 0
        assert cli("data", "import", str(new), "--ticker", "SPY").exit_code == 0
        assert read_raw(cli.data_dir, "SPY", old_md5)[0].equals(clean)
        assert cli("data", "verify").exit_code == 0

    # The migration adds the old file's copy and a manifest rewrite before the import's writes.
    assert kill_at_each_step(["import", str(cli.data_dir), str(new), "SPY"], reset, check) >= 20


def test_fetch_killed_at_every_write_step_loses_nothing(cli, tmp_path, monkeypatch, kill_at_each_step):
    from fintrain.data import sources

    monkeypatch.setattr(sources, "yahoo_history", sys.modules["fault_injection"].recorded_yahoo)
    assert cli("data", "fetch", "MSFT", "--end", "2010-12-31").exit_code == 0
    previous = current(cli.data_dir, "MSFT")
    baseline = tmp_path / "baseline"
    shutil.copytree(cli.data_dir, baseline)

    def reset():
        shutil.rmtree(cli.data_dir)
        shutil.copytree(baseline, cli.data_dir)

    def check(n):
        assert md5_file(cli.data_dir / previous["path"]) == previous["md5"]
        assert current(cli.data_dir, "MSFT") == previous or current(cli.data_dir, "MSFT")["rows"] == 3270
        assert cli("data", "verify").exit_code == 0
        assert cli("data", "fetch", "MSFT").exit_code == 0
        assert current(cli.data_dir, "MSFT")["rows"] == 3270
        assert cli("data", "verify").exit_code == 0

    assert kill_at_each_step(["fetch", str(cli.data_dir), "MSFT"], reset, check) >= 10


def test_features_build_killed_at_every_write_step_loses_nothing(cli, kill_at_each_step, tmp_path):
    from fintrain.features import processed_manifest

    assert cli("data", "fetch", "MSFT", "--source", "sample", "--end", "2010-12-31").exit_code == 0
    assert cli("features", "build", "MSFT").exit_code == 0
    previous = processed_manifest(cli.data_dir).latest("dataset", "MSFT.features.a20")
    assert cli("data", "fetch", "MSFT", "--source", "sample").exit_code == 0
    baseline = tmp_path / "baseline"
    shutil.copytree(cli.data_dir, baseline)

    def reset():
        shutil.rmtree(cli.data_dir)
        shutil.copytree(baseline, cli.data_dir)

    def check(n):
        assert md5_file(cli.data_dir / previous["path"]) == previous["md5"]
        assert cli("data", "verify").exit_code == 0
        result = cli("features", "build", "MSFT", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["source_raw_md5"] == current(cli.data_dir, "MSFT")["md5"]
        assert cli("data", "verify").exit_code == 0

    assert kill_at_each_step(["features", str(cli.data_dir), "MSFT", "a20"], reset, check) >= 10


# --- concurrency ----------------------------------------------------------------------------

ROUNDS = 20
# Bounds on every wait, so that a broken store fails the test instead of hanging it: a round
# (two imports of a few hundred rows) takes well under a second; the first one also imports polars.
ROUND_TIMEOUT_S = 60.0
# A worker gives up when no go signal comes for this long (the test failed, or was killed).
WORKER_WAIT_S = 90.0

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fintrain.data import import_file
    data_dir, files, sync, name = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    rounds, wait_s = int(sys.argv[5]), float(sys.argv[6])
    for i in range(rounds):
        deadline = time.monotonic() + wait_s
        while not (sync / f"go-{i}").exists():
            if (sync / "stop").exists():
                sys.exit(f"worker {name}: told to stop before round {i}")
            if time.monotonic() > deadline:
                sys.exit(f"worker {name}: no go signal for round {i} within {wait_s} s")
            time.sleep(0.002)
        import_file(data_dir, files / f"{name}-{i}.csv", "SPY")
        (sync / f"done-{name}-{i}").touch()
    """
)


def _stop(procs: list[subprocess.Popen], sync: Path) -> None:
    """End the workers: ask them to stop, then kill any still running after a few seconds."""
    (sync / "stop").touch()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_two_processes_importing_one_ticker_keep_manifest_and_files_in_agreement(tmp_path, msft):
    data_dir, files, sync = tmp_path / "data", tmp_path / "files", tmp_path / "sync"
    files.mkdir()
    sync.mkdir()
    rows = {}
    for i in range(ROUNDS):
        for k, name in enumerate("ab"):
            rows[f"{name}-{i}.csv"] = 260 + 2 * i + k
            write_csv(msft.head(rows[f"{name}-{i}.csv"]), files / f"{name}-{i}.csv")
    logs = {name: tmp_path / f"worker-{name}.log" for name in "ab"}
    procs = []
    try:
        for name in "ab":
            with logs[name].open("w") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(data_dir), str(files), str(sync), name,
                     str(ROUNDS), str(WORKER_WAIT_S)],
                    stdout=log, stderr=subprocess.STDOUT,
                ))
        for i in range(ROUNDS):
            (sync / f"go-{i}").touch()
            deadline = time.monotonic() + ROUND_TIMEOUT_S
            while not all((sync / f"done-{n}-{i}").exists() for n in "ab"):
                # A worker that finished the last round exits while the other may still work.
                dead = [n for n, p in zip("ab", procs)
                        if p.poll() is not None and not (sync / f"done-{n}-{i}").exists()]
                assert not dead, f"worker {dead} died in round {i}: {logs[dead[0]].read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"round {i} did not finish in {ROUND_TIMEOUT_S} s"
                time.sleep(0.005)
            entries = raw_manifest(data_dir).read()
            assert len(entries) == 2 * (i + 1)
            assert {e["source"] for e in entries[-2:]} == {f"import:a-{i}.csv", f"import:b-{i}.csv"}
            for entry in entries[-2:]:
                stored = pl.read_parquet(data_dir / entry["path"])
                assert stored.height == entry["rows"] == rows[entry["source"].removeprefix("import:")]
            results = verify(data_dir)
            assert {r.status for r in results} == {"OK"}, [r for r in results if r.status != "OK"]
            assert len(results) == 2 * (i + 1)
        for proc in procs:
            proc.wait(timeout=ROUND_TIMEOUT_S)
    finally:
        _stop(procs, sync)
    assert [p.returncode for p in procs] == [0, 0], {n: logs[n].read_text()[-2000:] for n in "ab"}
