"""``fintrain thermal-watch``: live temperatures, the band, and what the policy would do."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from fintrain.cli.common import err_console, out_console, run_config
from fintrain.errors import ThermalError
from fintrain.thermal import NoSensor, TraceWriter, open_sensor
from fintrain.thermal.watch import WatchView, watch


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
    """Watch the SoC temperature: each sensor, the deciding value and the hottest sensor, the
    band, the OS's pressure level, a sparkline, minimum and maximum, and the policy's decision.

    A live view on a terminal, one line per sample otherwise; no sensor: says so, exits 0.

    Example: fintrain thermal-watch --source 'replay:examples/thermal/rise_to_92.csv?speed=20' --log rec.csv
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
                    live.update(view.renderable(), refresh=True)
                else:
                    typer.echo(view.line(status))
        except KeyboardInterrupt:
            pass  # Ctrl-C is the normal way to end a watch
    span = "no reading" if view.min_c is None else f"min {view.min_c:.1f} C, max {view.max_c:.1f} C"
    logged = f"; logged to {log}" if log is not None else ""
    err_console.print(f"{view.latest.samples if view.latest else 0} samples, {span}{logged}", highlight=False)
