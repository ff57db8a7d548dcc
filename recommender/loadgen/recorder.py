"""Per-request measurements folded into per-second, mergeable histograms.

One record per second of the run (by completion time) holds the count of requests,
successes, errors by kind, and two latency histograms of the successful requests: from the
actual send (`latency_us`) and from the intended send (`latency_co_us`, corrected for
coordinated omission). Memory is one or two open seconds whatever the run length; each
finished second is handed to `sink` (a JSON-lines appender) and forgotten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from recommender import histograms


@dataclass
class SecondCounts:
    """One second of requests: counts, errors by kind, and the two latency histograms of
    its successes. Also what the master of several workers merges theirs into."""

    requests: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    hist: HdrHistogram = field(default_factory=histograms.new)
    hist_co: HdrHistogram = field(default_factory=histograms.new)

    def to_record(self, second: int, stage: int | None, cpu: float | None) -> dict[str, Any]:
        """The line latency.jsonl holds for this second."""
        return {
            "second": second,
            "stage": stage,
            "requests": self.requests,
            "ok": self.ok,
            "errors": dict(self.errors),
            "latency_us": histograms.encode(self.hist) if self.ok else "",
            "latency_co_us": histograms.encode(self.hist_co) if self.ok else "",
            "cpu_percent": cpu,
        }

    def reset(self) -> None:
        self.requests = self.ok = 0
        self.errors.clear()
        self.hist.reset()
        self.hist_co.reset()


class Recorder:
    """Folds requests into seconds; `flush(now)` emits every second that has ended."""

    def __init__(
        self,
        t0: float,
        stage_of: Callable[[int], int | None],
        sink: Callable[[dict[str, Any]], None],
        sample_cpu: Callable[[], float] | None = None,
    ) -> None:
        self.t0 = t0
        self.stage_of = stage_of
        self.sink = sink
        self.sample_cpu = sample_cpu
        self._open: dict[int, SecondCounts] = {}
        # Flushed seconds, reset and reused: an HdrHistogram and its encoder reference each
        # other, so dropped ones wait for the cycle collector and the heap creeps up.
        self._spare: list[SecondCounts] = []

    def record(
        self,
        end_time: float,
        latency_ms: float,
        intended: float | None,
        error: str | None,
    ) -> None:
        """One finished request. `intended` is its scheduled send time (epoch seconds)."""
        second = int(end_time - self.t0)
        bucket = self._open.get(second)
        if bucket is None:
            bucket = self._open[second] = self._spare.pop() if self._spare else SecondCounts()
        bucket.requests += 1
        if error is not None:
            bucket.errors[error] += 1
            return
        bucket.ok += 1
        histograms.record_ms(bucket.hist, latency_ms)
        if intended is not None:
            # The wait for a free user or a late timer counts as latency too.
            late_ms = max(0.0, (end_time - intended) * 1000.0 - latency_ms)
            histograms.record_ms(bucket.hist_co, latency_ms + late_ms)
        else:
            histograms.record_ms(bucket.hist_co, latency_ms)

    def flush(self, now: float | None = None) -> int:
        """Emit seconds that ended before `now` (all of them when None); returns how many."""
        limit = None if now is None else int(now - self.t0)
        done = sorted(s for s in self._open if limit is None or s < limit)
        cpu = self.sample_cpu() if (self.sample_cpu and done) else None
        for s in done:
            b = self._open.pop(s)
            self.sink(b.to_record(s, self.stage_of(s), cpu))
            b.reset()
            self._spare.append(b)
        return len(done)


def error_kind(
    exception: BaseException | None, status: int | None, error_type: str | None = None
) -> str | None:
    """A short, stable name for a failure: SageMaker's error type where the answer names one
    ("ThrottlingException", from `x-amzn-ErrorType: ThrottlingException:http://...`), else
    "HTTP 503", "ConnectionRefusedError", ..."""
    if exception is None:
        return None
    name = (error_type or "").split(":", 1)[0].strip()
    if name and name.replace("_", "").isalnum():
        return name
    if status:
        return f"HTTP {status}"
    return type(exception).__name__


ERROR_TYPE_HEADER = "x-amzn-ErrorType"


def response_error_type(response: Any) -> str | None:
    """The x-amzn-ErrorType header of a response (any object with `headers`), if any."""
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get(ERROR_TYPE_HEADER) or headers.get(ERROR_TYPE_HEADER.lower())
    except Exception:  # noqa: BLE001 - a header we cannot read names no type
        return None
    return str(value) if value else None
