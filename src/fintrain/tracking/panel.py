"""The live Rich panel shown while a run trains in a terminal.

``log()`` runs on the training thread and only stores values under a lock; the panel's own
thread redraws it, at most a few times a second and only when a record has arrived since the
last redraw. So drawing never costs the loop more than a dict update and a lock, and an
unchanged panel is not laid out again: a redraw takes about 3 ms of Python holding the GIL,
which on a two-core laptop is time the training thread waits for.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import IO, Any, Self

from rich.console import Console, RenderableType
from rich.file_proxy import FileProxy
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from fintrain.display import (
    epoch_label,
    format_bytes,
    format_duration,
    format_lr,
    format_metric,
    format_value,
    shown_metrics,
    sparkline,
    temperature_text,
    val_metrics,
)
from fintrain.records import EpochRecord, Event, EventRecord, FinalRecord, PhaseRecord, Record, StatusRecord, TrainRecord
from fintrain.thermal.reading import pressure_name
from fintrain.tracking.sink import RunInfo

log = logging.getLogger(__name__)

# The colours of the thermal bands (the policy's names).
BAND_STYLES = {
    "normal": "green",
    "acceptable": "yellow",
    "warning": "dark_orange",
    "critical": "bold red",
}

EVENT_STYLES = {
    "best": "green",
    "checkpoint": "dim",
    "resumed": "cyan",
    "thermal_pause": "dark_orange",
    "thermal_resume": "green",
    "thermal_stop": "bold red",
    "interrupted": "bold red",
    "early_stop": "yellow",
    "nonfinite": "bold yellow",
}

BAR_WIDTH = 30


class _Rows:
    """The panel's label and value rows, drawn as one Text: labels dim in a column, a value's
    further lines indented under it.

    One Text rather than a ``Table.grid``: a grid measures every cell on every redraw, which
    made a redraw cost about 2.7 ms of Python holding the GIL, against 0.8 ms for this. Lines
    too long for the terminal end in an ellipsis rather than wrapping, so the panel keeps its
    height.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, Text]] = []

    def add_row(self, label: str, value: Text | str) -> None:
        """Append a row."""
        self.rows.append((label, value if isinstance(value, Text) else Text(value)))

    def text(self) -> Text:
        """All rows, one line each (more for a value with newlines)."""
        width = max((len(label) for label, _ in self.rows), default=0) + 2
        lines: list[Text] = []
        for label, value in self.rows:
            for i, part in enumerate(value.split("\n")):
                line = Text()
                line.append((label if i == 0 else "").ljust(width), style="dim")
                line.append_text(part)
                lines.append(line)
        body = Text("\n").join(lines)
        body.no_wrap = True
        body.overflow = "ellipsis"
        return body


def _handlers() -> Iterator[logging.Handler]:
    """Every handler of the root logger and of every named logger, once each."""
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    seen: set[int] = set()
    for logger in loggers:
        for handler in logger.handlers:
            if id(handler) not in seen:
                seen.add(id(handler))
                yield handler


def _draws_over(stream: Any, console: Console) -> bool:
    """Whether lines written to ``stream`` land on the terminal the panel is drawn on."""
    if stream is console.file or stream is getattr(console.file, "rich_proxied_file", None):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _bar(completed: float, total: float, width: int = BAR_WIDTH) -> Text:
    """A text progress bar: filled part in the accent colour, the rest dim."""
    fraction = 0.0 if total <= 0 else max(0.0, min(1.0, completed / total))
    filled = round(fraction * width)
    bar = Text()
    bar.append("━" * filled, style="magenta")
    bar.append("━" * (width - filled), style="grey23")
    return bar


class LivePanel:
    """A Rich ``Live`` panel fed by the training loop's records.

    Shows the run facts, epoch and step progress with an ETA, the learning rate, training and
    validation loss with a sparkline of recent training loss, the best validation metric,
    samples/s, the SoC temperature (now and maximum, coloured by band) and thermal state, the
    device memory in use, the last few events and, at the end, the test metrics beside the
    baselines.

    Use it as a context manager or call :meth:`start` and :meth:`close`. Records logged before
    ``start`` are kept and shown once it starts.

    Args:
        info: the run's static facts.
        console: where to draw; a new stderr console when None.
        refresh_per_second: the most redraws a second (on the panel's thread); the panel is
            redrawn only when a record has arrived since the last redraw.
        history: how many recent training losses the sparkline shows.
        max_events: how many recent events are listed.
    """

    def __init__(
        self,
        info: RunInfo,
        console: Console | None = None,
        refresh_per_second: float = 4,
        history: int = 40,
        max_events: int = 5,
    ):
        self.info = info
        self.console = console if console is not None else Console(stderr=True)
        self.refresh_per_second = refresh_per_second
        self._lock = threading.Lock()
        self._train: dict[str, Any] = {}
        self._epoch: dict[str, Any] = {}
        self._status: dict[str, Any] = {}
        self._running: dict[str, Any] = {}  # loss, lr and samples/s of a status newer than the last train record
        self._final: dict[str, Any] | None = None
        self._phase: PhaseRecord | None = None  # what runs now besides training steps
        self._losses: deque[float] = deque(maxlen=history)
        self._events: deque[tuple[int, str, str]] = deque(maxlen=max_events)
        self._skipped = 0  # optimizer steps skipped for a non-finite loss or gradient norm
        # (step, training seconds) of the first and latest records that carry them: the ETA.
        self._first_progress: tuple[int, float] | None = None
        self._progress: tuple[int, float] | None = None
        self._step = info.start_step
        self._live: Live | None = None
        self._changed = threading.Event()  # set by log(), cleared by the redraw thread
        self._stop = threading.Event()
        self._redraw_thread: threading.Thread | None = None
        self._rerouted: list[tuple[logging.StreamHandler, IO[str]]] = []  # log handlers and their own streams

    # -- the loop's side: store and return ---------------------------------------------------

    def log(self, record: Record, step: int) -> None:
        """Store a record's values for the next redraw."""
        with self._lock:
            self._step = max(self._step, step)
            if isinstance(record, StatusRecord | TrainRecord) and record.time_s is not None:
                self._progress = (step, float(record.time_s))
                if self._first_progress is None:
                    self._first_progress = self._progress
            match record:
                case StatusRecord():
                    self._status = record.to_json()
                    if record.lr is not None:
                        self._running = {k: v for k, v in self._status.items() if k in ("train/loss", "lr", "throughput")}
                case PhaseRecord():
                    self._phase = record
                case TrainRecord(loss=loss):
                    self._train = record.to_json()
                    self._running = {}
                    self._phase = None  # training again
                    if loss is not None:
                        self._losses.append(float(loss))
                case EpochRecord():
                    self._epoch = record.to_json()
                case EventRecord(event=event, message=message):
                    self._events.append((step, str(event), message))
                    if event is Event.NONFINITE:
                        self._skipped += 1
                case FinalRecord():
                    self._final = record.to_json()
                    self._phase = None
        self._changed.set()

    # -- Rich's side: draw from a snapshot ---------------------------------------------------

    def start(self) -> Self:
        """Show the panel and start redrawing it."""
        if self._live is None:
            self._live = Live(
                get_renderable=self.render,
                console=self.console,
                auto_refresh=False,  # redrawn by _redraw_changes, only when something changed
                transient=False,
                # With the panel on stderr, stdout stays for a --json document.
                redirect_stdout=self.console.file is not sys.stderr,
            )
            self._changed.clear()
            self._live.start(refresh=True)
            self._reroute_logs()
            self._stop.clear()
            self._redraw_thread = threading.Thread(
                target=self._redraw_changes, args=(self._live,), name="fintrain-panel", daemon=True
            )
            self._redraw_thread.start()
        return self

    def _redraw_changes(self, live: Live) -> None:
        """Redraw after each change, at most ``refresh_per_second`` times a second."""
        interval_s = 1.0 / self.refresh_per_second
        failed = False
        while not self._stop.wait(interval_s):
            if self._changed.is_set():
                self._changed.clear()
                try:
                    live.refresh()
                except Exception:  # a drawing bug must not freeze the panel for the rest of the run
                    if not failed:
                        log.exception("drawing the live panel failed; it keeps trying with each change")
                    failed = True

    def close(self) -> None:
        """Draw the final state once more and stop redrawing (the panel stays on screen)."""
        if self._live is not None:
            live, self._live = self._live, None
            self._stop.set()
            if self._redraw_thread is not None:
                self._redraw_thread.join()
                self._redraw_thread = None
            live.stop()
            self._restore_logs()

    def _reroute_logs(self) -> None:
        """Send the log lines meant for this terminal above the panel, through its console.

        A logging handler keeps the stream it was given (``logging.basicConfig`` takes
        ``sys.stderr`` before any panel exists), so Live's own redirection of ``sys.stderr``
        misses it: a warning written straight to the terminal lands on the panel's border, and
        the next redraw leaves a stale copy of the panel's top lines above it. Through the
        console, Live clears the panel, prints the line and redraws the panel below it.
        """
        for handler in _handlers():
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                stream = handler.stream
                if _draws_over(stream, self.console):
                    handler.setStream(FileProxy(self.console, stream))
                    self._rerouted.append((handler, stream))

    def _restore_logs(self) -> None:
        """Give each rerouted handler its own stream back."""
        for handler, stream in self._rerouted:
            handler.setStream(stream)
        self._rerouted.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "train": dict(self._train),
                "epoch": dict(self._epoch),
                "status": dict(self._status),
                "running": dict(self._running),
                "final": dict(self._final) if self._final is not None else None,
                "phase": self._phase,
                "losses": list(self._losses),
                "events": list(self._events),
                "skipped": self._skipped,
                "first_progress": self._first_progress,
                "progress": self._progress,
                "step": self._step,
            }

    def render(self) -> RenderableType:
        """The panel for the values stored so far."""
        snap = self._snapshot()
        info = self.info
        train, epoch, status = snap["train"], snap["epoch"], snap["status"]
        step = snap["step"]

        grid = _Rows()

        facts = Text()
        facts.append(f"device {info.device}", style="bold")
        facts.append(f"  ticker {info.ticker}  tier {info.tier}  budget {info.budget}  ")
        facts.append(f"params {info.params:,}  task {info.task}")
        grid.add_row("run", facts)

        # Epochs are numbered from 1: the one in progress follows those completed before it.
        completed = max(
            int(train.get("epoch") or 1) - 1,
            int(epoch["epoch"]) if isinstance(epoch.get("epoch"), int) else 0,
        )
        current = train.get("epoch", epoch.get("epoch"))
        epoch_text = _bar(completed, info.epochs)
        epoch_text.append(f"  {epoch_label(current)}/{info.epochs}")
        grid.add_row("epoch", epoch_text)

        total = info.total_steps
        step_text = _bar(step, total)
        percent = min(100.0, 100.0 * step / total) if total else 0.0
        step_text.append(f"  {step:,}/{total:,}  {percent:.0f}%  ETA {format_duration(self._eta(snap, total))}")
        if snap["skipped"]:
            step_text.append(f"  {snap['skipped']:,} skipped (non-finite)", style="bold yellow")
        grid.add_row("step", step_text)
        phase = snap["phase"]
        if phase is not None:
            now = Text()
            if phase.total:
                now.append_text(_bar(phase.done, phase.total, BAR_WIDTH // 2))
                now.append("  ")
            now.append(phase.text(), style="bold cyan")
            grid.add_row("now", now)

        # Between train records (and before the first) the running figures of the latest status.
        live = {**train, **snap["running"]}
        speed = Text(format_lr(live.get("lr")) if live.get("lr") is not None else "-")
        throughput = live.get("throughput")
        speed.append("   samples/s ", style="dim")
        speed.append(f"{float(throughput):,.0f}" if throughput is not None else "-")
        grid.add_row("lr", speed)

        loss = Text()
        loss.append("train ", style="dim")
        loss.append(format_value(live.get("train/loss")) if live else "-")
        loss.append(f" {sparkline(snap['losses'])}", style="cyan")
        loss.append("   val ", style="dim")
        loss.append(format_value(epoch.get("val/loss")) if epoch else "-")
        grid.add_row("loss", loss)

        primary = info.primary_metric
        best = epoch.get(f"best/{primary}")
        best_text = Text()
        best_text.append(f"val {primary} ", style="dim")
        best_text.append(format_value(best) if best is not None else "-", style="bold green")
        if epoch.get("best_epoch") is not None:
            best_text.append(f" (epoch {epoch_label(epoch['best_epoch'])})", style="dim")
        grid.add_row("best", best_text)

        metrics = val_metrics(epoch)
        if metrics:
            grid.add_row("val", "  ".join(f"{name} {format_metric(name, value)}" for name, value in metrics))

        grid.add_row("SoC", self._temperature(status))
        grid.add_row("thermal", self._thermal_state(status))
        grid.add_row("memory", format_bytes(status.get("memory_bytes")) if status else "-")

        if snap["events"]:
            events = Text()
            for i, (at, name, message) in enumerate(snap["events"]):
                if i:
                    events.append("\n")
                events.append(f"{at:>7,}  ", style="dim")
                events.append(name, style=EVENT_STYLES.get(name, ""))
                if message:
                    events.append(f"  {message}")
            grid.add_row("events", events)

        final = snap["final"]
        if final is not None:
            test = final.get("test") or {}
            grid.add_row(
                "test",
                Text("  ".join(f"{k} {format_metric(k, v)}" for k, v in shown_metrics(test)), style="bold"),
            )
            baselines = final.get("baselines") or {}
            if baselines:
                grid.add_row(
                    "baselines",
                    "  ".join(f"{name} {primary} {format_value(m.get(primary))}" for name, m in baselines.items()),
                )

        title = Text(f"fintrain train · {info.run_name}", style="bold")
        return Panel(grid.text(), title=title, title_align="left", border_style="blue", expand=False)

    def _eta(self, snap: Mapping[str, Any], total: int) -> float | None:
        """Seconds to the last step at the training rate seen since the first timed record.

        Train records and running status records (about one a second) carry the training
        seconds so far, so a big model has an ETA after its first steps, not its first log step.
        """
        if snap["progress"] is None:
            return None
        step, time_s = snap["progress"]
        first_step, first_time = snap["first_progress"]
        if step > first_step and time_s > first_time:
            rate = (step - first_step) / (time_s - first_time)
        elif time_s > 0 and step > 0 and self.info.start_step == 0:
            # A resumed run's time_s includes the earlier session: wait for a second record.
            rate = step / time_s
        else:
            return None
        return max(0, total - snap["step"]) / rate

    @staticmethod
    def _temperature(status: Mapping[str, Any]) -> Text:
        """The SoC temperature now and its maximum, coloured by band, or why there is none."""
        if not status:
            return Text("-", style="dim")
        band = status.get("thermal/band")
        temp_c = status.get("thermal/temp_c")
        if band == "off":
            return Text("monitor off", style="dim")
        if temp_c is None and status.get("thermal/pressure") is not None:
            # A pressure-only source: say that the bands are off, not just that a number is missing.
            level = pressure_name(status["thermal/pressure"])
            return Text(f"no temperature: OS pressure {level} only (bands off)", style="magenta")
        if temp_c is None:
            return Text("no sensor", style="dim")
        style = BAND_STYLES.get(str(band), "")
        text = Text()
        text.append(temperature_text(temp_c), style=style)
        text.append(f" {band}", style=style)
        if status.get("thermal/temp_max_c") is not None:
            text.append("   max ", style="dim")
            text.append(temperature_text(status["thermal/temp_max_c"]), style=style)
        if status.get("thermal/hottest_c") is not None:
            text.append("   hottest sensor ", style="dim")
            text.append(temperature_text(status["thermal/hottest_c"]))
        return text

    @staticmethod
    def _thermal_state(status: Mapping[str, Any]) -> Text:
        """``running``, or ``paused 42 s, 91 C, falling``."""
        if not status:
            return Text("starting", style="dim")
        if status.get("state") != "paused":
            return Text(str(status.get("state", "running")), style="green")
        parts = [f"paused {float(status.get('paused_s') or 0.0):.0f} s"]
        if status.get("thermal/temp_c") is not None:
            parts.append(f"{float(status['thermal/temp_c']):.0f} C")
        if status.get("thermal/trend"):
            parts.append(str(status["thermal/trend"]))
        return Text(", ".join(parts), style="bold dark_orange")
