"""Thermal safety: temperature sources, the pause/resume/stop policy, and the monitor thread.

Typical use in a training loop::

    sensor = open_sensor(cfg.thermal.source, cfg.thermal.json_field)
    with ThermalMonitor(cfg.thermal, sensor) as monitor:
        for step in ...:
            status = monitor.status()      # cheap: no I/O
            if status.action == "stop": ...  # save a checkpoint, exit 3
            if status.action == "pause": ... # wait, keep the panel alive
"""

from fintrain.thermal.monitor import ThermalMonitor, ThermalStatus
from fintrain.thermal.policy import Action, Band, Policy, PolicyState, Trend, band_of
from fintrain.thermal.reading import Reading, ValueFilter, build_reading, pressure_name
from fintrain.thermal.replay import ReplaySensor, Trace, TraceWriter, read_trace
from fintrain.thermal.sensor import NoSensor, Sensor
from fintrain.thermal.sources import SENSORS, open_sensor, parse_spec

__all__ = [
    "SENSORS",
    "Action",
    "Band",
    "NoSensor",
    "Policy",
    "PolicyState",
    "Reading",
    "ReplaySensor",
    "Sensor",
    "ThermalMonitor",
    "ThermalStatus",
    "Trace",
    "TraceWriter",
    "Trend",
    "ValueFilter",
    "band_of",
    "build_reading",
    "open_sensor",
    "parse_spec",
    "pressure_name",
    "read_trace",
]
