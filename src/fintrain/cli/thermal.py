"""``fintrain thermal-watch``: live temperatures, the band, and what the policy would do."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fintrain.cli.common import err_console, out_console, run_config
from fintrain.config import ThermalConfig
from fintrain.errors import ThermalError
from fintrain.thermal import NoSensor, TraceWriter, open_sensor
from fintrain.thermal.policy import band_of
from fintrain.thermal.reading import pressure_name
from fintrain.thermal.watch import WatchView, watch
from fintrain.display import sparkline

BAND_STYLE = {
    "normal": "green",
    "acceptable": "yellow",
    "warning": "dark_orange",
    "critical": "bold red",
    "no reading": "magenta",
}
ACTION_STYLE = {"run": "green", "pause": "bold dark_orange", "stop": "bold red"}


def band_sparkline(values: list[float | None], lo: float, hi: float, cfg: ThermalConfig) -> Text:
    """The shared sparkline on a fixed [lo, hi] scale, each block coloured by its band."""
    text = Text()
    for char, value in zip(sparkline(values, lo, hi), values, strict=True):
        text.append(char, style=BAND_STYLE[band_of(value, cfg)] if value is not None else "")
    return text




def thermal_watch(
    source: Annotated[
        str | None,
        typer.Option(help="auto, none, macos, linux, nvidia, command:CMD or replay:PATH[?speed=N]."),
    ] = None,
    json_field: Annotated[
        str | None, typer.Option(help="Dotted JSON field a command: source reads, e.g. temp.cpu_temp_avg.")
    ] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between samples (decimals allowed).")] = None,
    duration: Annotated[
        float | None, typer.Option(min=0, help="Seconds to watch; default: until Ctrl-C.")
    ] = None,
    log: Annotated[
        Path | None, typer.Option(help="Record the samples to this CSV (the format replay: reads).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file (its \\[thermal] section).")] = None,
) -> None:
    """Watch the temperature live: its band and what the thermal policy would do.

    Shows each sensor, the deciding value and the hottest sensor, the band, the OS's pressure
    level, a sparkline, minimum and maximum, and the policy's decision. A live view on a
    terminal, one line per sample otherwise; no sensor: says so, exits 0.

    Examples:
      fintrain thermal-watch                        # until Ctrl-C
      fintrain thermal-watch --duration 600 --log laptop.csv
      fintrain thermal-watch --source 'replay:examples/thermal/rise_to_92.csv'
      fintrain thermal-watch --source 'command:macmon pipe -s 0' \\
          --json-field temp.cpu_temp_avg
    """
    overrides = {"thermal": {"source": source, "json_field": json_field, "interval_s": interval}}
    cfg = run_config(config, overrides).thermal
    sensor = open_sensor(cfg.source, cfg.json_field)
    if sensor is None:
        err_console.print("thermal monitoring is off (source none): nothing to watch")
        return
    if isinstance(sensor, NoSensor):
        reason = sensor.reason
        if not reason.startswith("no temperature sensor available"):
            reason = f"no temperature sensor available: {reason}"
        err_console.print(reason, highlight=False, soft_wrap=True)
        return
    view = WatchView(cfg)
    with contextlib.ExitStack() as stack:
        writer = None
        if log is not None:
            try:
                writer = TraceWriter(stack.enter_context(log.open("w", encoding="utf-8", newline="")))
            except OSError as exc:
                sensor.close()
                raise ThermalError(f"cannot write the log {log}: {exc}") from exc
        samples = stack.enter_context(contextlib.closing(watch(cfg, sensor, duration)))
        live = stack.enter_context(Live(console=out_console, auto_refresh=False)) if out_console.is_terminal else None
        try:
            for status in samples:
                view.update(status)
                if writer is not None:
                    writer.write(status.t_s, status.temp_c, status.pressure)
                if live is not None:
                    live.update(render_watch(view), refresh=True)
                else:
                    typer.echo(view.line(status))
        except KeyboardInterrupt:
            pass  # Ctrl-C is the normal way to end a watch
    span = "no reading" if view.min_c is None else f"min {view.min_c:.1f} C, max {view.max_c:.1f} C"
    logged = f"; logged to {log}" if log is not None else ""
    err_console.print(f"{view.latest.samples if view.latest else 0} samples, {span}{logged}", highlight=False)


def render_watch(view: WatchView) -> RenderableType:
    """The live view: sensors, deciding value, hottest, band, pressure, sparkline, min/max."""
    status = view.latest
    if status is None:
        return Text("waiting for the first sample...")
    band_style = BAND_STYLE[status.band]
    head = Text()
    if status.temp_c is None:
        head.append("no reading", style=band_style)
        head.append(f"  {status.reason}")
    else:
        head.append(f"{status.smoothed_c:.1f} C ", style=f"bold {band_style}")
        head.append(f"{status.band}", style=band_style)
        head.append(f"  (latest {status.temp_c:.1f} C, {status.trend})")
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    if status.hottest_c is not None:
        summary.add_row("hottest", Text(f"{status.hottest_c:.1f} C  {status.hottest_name}"))
    summary.add_row("pressure", pressure_name(status.pressure))
    low = "-" if view.min_c is None else f"{view.min_c:.1f} C"
    high = "-" if view.max_c is None else f"{view.max_c:.1f} C"
    summary.add_row("min / max", f"{low} / {high}")
    policy = Text(status.action, style=ACTION_STYLE[status.action])
    if status.action != "run" or status.temp_c is not None:
        policy.append(f"  {status.reason}", style="default")
    summary.add_row("policy", policy)
    if status.dropped:
        summary.add_row("dropped", f"{status.dropped} faulty values")
    parts: list[RenderableType] = [head, summary]
    if view.history and status.t_s is not None:
        values = [v for _, v in view.history]
        lo = min(min(values), view.cfg.acceptable_c - 10)
        hi = max(max(values), view.cfg.warning_c)
        minutes = view.window_s / 60
        parts.append(Text(f"last {minutes:g} min  ({lo:.0f}-{hi:.0f} C)", style="dim"))
        parts.append(band_sparkline(view.spark_values(status.t_s), lo, hi, view.cfg))
    if status.sensors:
        table = Table(show_header=True, header_style="dim", box=None, padding=(0, 2))
        table.add_column("sensor")
        table.add_column("C", justify="right")
        for name, value in sorted(status.sensors.items()):
            table.add_row(Text(name), Text(f"{value:.1f}", style=BAND_STYLE[band_of(value, view.cfg)]))
        parts.append(table)
    # A Text: a str title is read as markup, and the source is the user's (replay:PATH, command:CMD).
    title = Text(f"fintrain thermal-watch · {status.source} · {view.elapsed_s(status):.0f} s")
    return Panel(Group(*parts), title=title, border_style=band_style, expand=False)
