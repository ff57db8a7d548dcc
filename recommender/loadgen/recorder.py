"""Per-request measurements folded into per-second, mergeable histograms.

One record per second of the run (by completion time) holds the count of requests,
successes, errors by kind ("HTTP 503", "ConnectionRefusedError"), the same errors by the
SageMaker error type their answer carried where it carried one (`error_types`:
"ThrottlingException", "ModelError", ...; see recommender.runtime_errors), and two latency
histograms of the successful requests: from the
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

from recommender import histograms, runtime_errors


@dataclass
class SecondCounts:
    """One second of requests: counts, errors by kind, and the two latency histograms of
    its successes. Also what the master of several workers merges theirs into."""

    requests: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)  # a subset of the errors
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
            "error_types": dict(self.error_types),
            "latency_us": histograms.encode(self.hist) if self.ok else "",
            "latency_co_us": histograms.encode(self.hist_co) if self.ok else "",
            "cpu_percent": cpu,
        }

    def reset(self) -> None:
        self.requests = self.ok = 0
        self.errors.clear()
        self.error_types.clear()
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
        error_type: str | None = None,
    ) -> None:
        """One finished request. `intended` is its scheduled send time (epoch seconds);
        `error_type` the SageMaker error type of a failure's answer, if it had one."""
        second = int(end_time - self.t0)
        bucket = self._open.get(second)
        if bucket is None:
            bucket = self._open[second] = self._spare.pop() if self._spare else SecondCounts()
        bucket.requests += 1
        if error is not None:
            bucket.errors[error] += 1
            if error_type is not None:
                bucket.error_types[error_type] += 1
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


def response_error_type(response: Any) -> str | None:
    """The SageMaker error type a failed answer carries (`x-amzn-ErrorType`, `__type`)."""
    try:
        headers, body = response.headers, response.content
    except Exception:  # a response cut off mid-body: no type to read
        return None
    return runtime_errors.error_type(headers, body)


def error_kind(exception: BaseException | None, status: int | None) -> str | None:
    """A short, stable name for a failure: "HTTP 503", "ConnectionRefusedError", ..."""
    if exception is None:
        return None
    if status:
        return f"HTTP {status}"
    return type(exception).__name__
