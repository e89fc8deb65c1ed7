"""The report's PNGs: written, of the expected pixel size, and a clear error without matplotlib."""

from __future__ import annotations

import sys

import pytest

from fintrain.experiments.plots import draw_all
from fintrain.experiments.report import ReportError, build_report, write_report
from fintrain.experiments.runs import list_runs

pytest.importorskip("matplotlib")

from fintrain.experiments.plots import png_size


def _sweep(root, write_run, budgets=(("2m", 1_985_025), ("20m", 18_912_769)), seeds=2, **facts):
    for budget, params in budgets:
        for seed in range(seeds):
            write_run(root, f"s-{budget}-seed{seed}", budget=budget, seed=seed, params=params,
                      test=0.53 + 0.01 * seed + (0.02 if budget == "20m" else 0.0), **facts)
    return build_report(list_runs(root))


def test_the_pngs_of_the_expected_size(tmp_path, write_run):
    report = _sweep(tmp_path / "runs", write_run, temps=[60.0, 72.0, 86.0, 81.0], pause_at_steps=(30,))
    files = write_report(report, tmp_path / "out", draw_all(report, tmp_path / "out"))
    assert [p.name for p in files] == ["scaling.png", "loss_curves.png", "compute.png", "temperature.png",
                                       "report.json", "report.md"]
    # 1200 px wide; scaling and compute 700 high; one row of panels per three budgets (450 px) or runs (350 px).
    assert png_size(tmp_path / "out" / "scaling.png") == (1200, 700)
    assert png_size(tmp_path / "out" / "compute.png") == (1200, 700)
    assert png_size(tmp_path / "out" / "loss_curves.png") == (1200, 450)
    assert png_size(tmp_path / "out" / "temperature.png") == (1200, 700)  # 4 runs: two rows
    assert all((tmp_path / "out" / name).stat().st_size > 20_000 for name in ("scaling.png", "loss_curves.png"))
    md = (tmp_path / "out" / "report.md").read_text()
    assert "![scaling](scaling.png)" in md and "![temperature](temperature.png)" in md


def test_plot_heights_grow_with_budgets_and_runs(tmp_path, write_run):
    from fintrain.experiments.plots import loss_plot, temperature_plot

    budgets = (("2m", 2_000_000), ("20m", 20_000_000), ("200m", 200_000_000), ("1b", 1_000_000_000))
    report = _sweep(tmp_path / "runs", write_run, budgets=budgets, seeds=1)
    assert png_size(loss_plot(report, tmp_path / "loss.png")) == (1200, 900)  # 4 budgets: two rows
    assert png_size(temperature_plot(report, tmp_path / "temp.png")) == (1200, 700)  # 4 runs, no readings


def test_without_matplotlib_the_error_says_how_to_install(tmp_path, write_run, monkeypatch):
    report = _sweep(tmp_path / "runs", write_run)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ReportError, match=r"plots need matplotlib, a dependency of fintrain that is missing: reinstall fintrain .*pipx reinstall fintrain"):
        draw_all(report, tmp_path / "out")
    assert not (tmp_path / "out" / "scaling.png").exists()
