"""The live status of a running load test, as users know it from k6 and Locust's console.

On a terminal, one line redrawn each second under the stage results (Rich's Live display,
from the first snapshot, so a confirmation prompt comes before it, until the load is
over). Elsewhere (CI, `| tee`) a plain line every 30 s, so a long stage still shows signs
of life. `--quiet` keeps only the stage results. The data comes from the runner's
once-a-second Snapshot (recommender.loadgen.progress), never from Locust's hot path.
`--prometheus-port` serves the same snapshots as Prometheus metrics while the view is open.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from recommender.loadgen.metrics_export import PrometheusExporter
from recommender.loadgen.progress import Snapshot, describe

PLAIN_EVERY = 30.0  # seconds between status lines when not on a terminal


class LiveView:
    """A context manager: `echo` prints a line (above the live status while it shows),
    `update` takes each second's snapshot."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        err: bool = False,
        prometheus_port: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet = quiet
        self.err = err  # with --json, everything but the result goes to stderr
        self.clock = clock
        self._live: Live | None = None
        self._last_plain = clock()
        self.prometheus_port = prometheus_port
        self._exporter: PrometheusExporter | None = None

    def __enter__(self) -> LiveView:
        if self.prometheus_port is not None:
            self._exporter = PrometheusExporter(self.prometheus_port)
            self.echo(f"Prometheus metrics: http://127.0.0.1:{self._exporter.port}/metrics")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop()
        if self._exporter is not None:
            self._exporter.close()

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @property
    def _stream(self) -> TextIO:
        return sys.stderr if self.err else sys.stdout

    def echo(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            typer.echo(text, err=self.err)

    def update(self, snapshot: Snapshot | None) -> None:
        """Each second's snapshot; None when the load is over (the live line goes)."""
        if self._exporter is not None:
            self._exporter.update(snapshot)
        if snapshot is None:
            self._stop()
            return
        if self.quiet:
            return
        line = describe(snapshot)
        if self._live is None and self._stream.isatty():
            console = Console(file=self._stream)
            self._live = Live(Text(line), console=console, refresh_per_second=4, transient=True)
            self._live.start()
        if self._live is not None:
            self._live.update(Text(line))
        elif self.clock() - self._last_plain >= PLAIN_EVERY:
            self._last_plain = self.clock()
            typer.echo(f"  ... {line}", err=self.err)
