"""Per-request measurements folded into per-second, mergeable histograms.

One record per second of the run (by completion time) holds the count of requests,
successes, errors by kind ("HTTP 503", "ConnectionRefusedError"), the same errors by the
SageMaker error type their answer carried where it carried one (`error_types`:
"ThrottlingException", "ModelError", ...; see recommender.runtime_errors), and two latency
histograms of the successful requests: from the actual send (`latency_us`) and from the
intended send (`latency_co_us`, corrected for coordinated omission). The difference is the
send's lateness, told apart in two more histograms of every request sent: the wait for a
free user (`wait_us`: every user busy with an answer, the endpoint's doing) and the
generator's own lateness past the time it had both a due send and a free user (`lag_us`:
its event loop late, CPU-starved). `reconnects` counts the sends made again because a
kept-alive connection closed before any response byte (recommender.loadgen.users): a
SageMaker client retries those, so they are no errors, but they are shown beside them
(a line carries the count only when there were some). Memory is one or two open seconds
whatever the run length; each finished second is handed to `sink` (a JSON-lines appender)
and forgotten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from recommender import histograms, runtime_errors
from recommender.plan import Slo


@dataclass
class SecondCounts:
    """One second of requests: counts, errors by kind, and the two latency histograms of
    its successes. Also what the master of several workers merges theirs into."""

    requests: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)  # a subset of the errors
    reconnects: int = 0  # sends made again on a fresh connection; not requests, not errors
    hist: HdrHistogram = field(default_factory=histograms.new)
    hist_co: HdrHistogram = field(default_factory=histograms.new)
    lag: HdrHistogram = field(default_factory=histograms.new)
    wait: HdrHistogram = field(default_factory=histograms.new)
    # Streamed responses (--stream): successes that streamed, their TTFT (from the actual
    # and the intended send), the gaps between their token-bearing parts, their tokens,
    # and how many met every term of the run's SLO (goodput).
    streamed: int = 0
    ttft: HdrHistogram = field(default_factory=histograms.new)
    ttft_co: HdrHistogram = field(default_factory=histograms.new)
    itl: HdrHistogram = field(default_factory=histograms.new)
    tokens_out: int = 0
    tokens_in: int = 0
    good: int = 0

    def to_record(self, second: int, stage: int | None, cpu: float | None) -> dict[str, Any]:
        """The line latency.jsonl holds for this second (the streaming fields only when
        something streamed, so other runs' lines are as they were)."""
        record: dict[str, Any] = {
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
        if self.reconnects:
            record["reconnects"] = self.reconnects
        if self.lag.get_total_count():  # not in runs recorded before, nor by custom senders
            record.update(lag_us=histograms.encode(self.lag), wait_us=histograms.encode(self.wait))
        if self.streamed or self.tokens_in:
            record.update(
                streamed=self.streamed,
                ttft_us=histograms.encode(self.ttft) if self.streamed else "",
                ttft_co_us=histograms.encode(self.ttft_co) if self.streamed else "",
                itl_us=histograms.encode(self.itl) if self.itl.get_total_count() else "",
                tokens_out=self.tokens_out,
                tokens_in=self.tokens_in,
                good=self.good,
            )
        return record

    def reset(self) -> None:
        self.requests = self.ok = self.reconnects = 0
        self.errors.clear()
        self.error_types.clear()
        self.hist.reset()
        self.hist_co.reset()
        self.lag.reset()
        self.wait.reset()
        if self.streamed or self.tokens_in:
            self.streamed = self.tokens_out = self.tokens_in = self.good = 0
            self.ttft.reset()
            self.ttft_co.reset()
            self.itl.reset()


class Recorder:
    """Folds requests into seconds; `flush(now)` emits every second that has ended."""

    def __init__(
        self,
        t0: float,
        stage_of: Callable[[int], int | None],
        sink: Callable[[dict[str, Any]], None],
        sample_cpu: Callable[[], float] | None = None,
        slo: Slo | None = None,
    ) -> None:
        self.t0 = t0
        self.goodput = _GoodputRule(slo) if slo is not None else None
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
        streamed: dict[str, Any] | None = None,
        error_type: str | None = None,
        free: float | None = None,
        reconnects: int = 0,
    ) -> None:
        """One finished request. `intended` is its scheduled send time (epoch seconds),
        `free` when the user that sent it was free to (its last request over);
        `streamed`: a streamed response's `tokens_in`, and when it streamed to its end
        `ttft` (s from the actual send), `gaps` (s) and `tokens_out`; `error_type` the
        SageMaker error type of a failure's answer, if it had one; `reconnects` how many
        times it was sent again after a kept-alive connection closed before answering."""
        second = int(end_time - self.t0)
        bucket = self._open.get(second)
        if bucket is None:
            bucket = self._open[second] = self._spare.pop() if self._spare else SecondCounts()
        bucket.requests += 1
        bucket.reconnects += reconnects
        if intended is not None:
            sent = end_time - latency_ms / 1000.0
            ready = intended if free is None else max(intended, free)
            histograms.record_ms(bucket.lag, max(0.0, sent - ready) * 1000.0)
            histograms.record_ms(bucket.wait, max(0.0, ready - intended) * 1000.0)
        if error is not None:
            bucket.errors[error] += 1
            if error_type is not None:
                bucket.error_types[error_type] += 1
            return
        bucket.ok += 1
        histograms.record_ms(bucket.hist, latency_ms)
        # The wait for a free user or a late timer counts as latency too.
        late_ms = 0.0 if intended is None else max(0.0, (end_time - intended) * 1000.0 - latency_ms)
        histograms.record_ms(bucket.hist_co, latency_ms + late_ms)
        if streamed is not None:
            self._record_stream(bucket, streamed, latency_ms + late_ms, late_ms)

    def _record_stream(
        self, bucket: SecondCounts, s: dict[str, Any], e2e_ms: float, late_ms: float
    ) -> None:
        bucket.tokens_in += s["tokens_in"]
        ttft = s.get("ttft")
        if ttft is None:
            return
        ttft_ms = ttft * 1000.0
        bucket.streamed += 1
        bucket.tokens_out += s["tokens_out"]
        histograms.record_ms(bucket.ttft, ttft_ms)
        histograms.record_ms(bucket.ttft_co, ttft_ms + late_ms)
        gaps = s["gaps"]
        itl = bucket.itl
        for gap in gaps:  # the hot loop of a streamed request: one histogram entry per part
            itl.record_value(min(max(int(gap * 1e6), 1), histograms.HIGHEST_US))
        if self.goodput is not None and self.goodput.met(ttft_ms + late_ms, gaps, e2e_ms):
            bucket.good += 1

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


def response_error_type(response: Any, status: int | None = None) -> str | None:
    """The SageMaker error type a failed answer carries, as botocore reads it
    (runtime_errors.error_type): the `x-amzn-ErrorType` header, else, for an HTTP error
    answer, the body's `code` or `__type` (a stream's body is not read again)."""
    try:
        found = runtime_errors.error_type(getattr(response, "headers", None), None)
        if found is not None or not (status and status >= 400):
            return found
        return runtime_errors.error_type(None, getattr(response, "content", None))
    except Exception:  # noqa: BLE001 - an answer cut off or unreadable names no type
        return None


class _GoodputRule:
    """Whether one streamed request met the SLO's limits on its own, as DistServe and
    vLLM's benchmark define goodput: its TTFT and end-to-end latency (from the intended
    send) within their limits, and its time per output token (the mean of its gaps) within
    the ITL limit. A request's own p99 gap would be its worst one: with 64 tokens, one
    slow gap in a hundred would disqualify half the requests of a stage that meets
    itl_p99. The goodput of a second is how many requests met them."""

    def __init__(self, slo: Slo) -> None:
        def limit(*metrics: str) -> float | None:
            return min((t.limit_ms for t in slo.terms if t.metric in metrics), default=None)

        self.ttft = limit("ttft")
        self.e2e = limit("latency", "e2e")
        itl = limit("itl")
        self.tpot = None if itl is None else itl / 1000.0  # s, as the gaps are

    def met(self, ttft_ms: float, gaps: list[float], e2e_ms: float) -> bool:
        if self.ttft is not None and ttft_ms > self.ttft:
            return False
        if self.e2e is not None and e2e_ms > self.e2e:
            return False
        return self.tpot is None or not gaps or sum(gaps) / len(gaps) <= self.tpot


def error_kind(
    exception: BaseException | None, status: int | None, error_type: str | None = None
) -> str | None:
    """A short, stable name for a failure: SageMaker's error type where the answer names one
    ("ThrottlingException", from `x-amzn-ErrorType: ThrottlingException:http://...`), else
    "HTTP 503", "ConnectionRefusedError", or a stream's own ("ModelStreamError:StreamBroken",
    "InternalStreamFailure", ...)."""
    if exception is None:
        return None
    name = (error_type or "").split(":", 1)[0].strip()
    if name and name.replace("_", "").isalnum():
        return name
    if status and status != 200:
        return f"HTTP {status}"
    kind = getattr(exception, "kind", None)
    if isinstance(kind, str):
        return kind
    if status:
        return f"HTTP {status}"
    return type(exception).__name__
