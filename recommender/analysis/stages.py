"""Per-stage statistics from per-second records (pure).

A stage's measured window is its whole seconds after the warm-up. Throughput is requests
completed in the window divided by its length (seconds without completions count too: a
stalled endpoint shows as low throughput, not as a shorter stage). Latency percentiles are
read from the merged histograms of the window's successful requests, measured from the
intended send time (coordinated-omission corrected) unless asked otherwise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from recommender import histograms
from recommender.plan import RampPlan, Slo
from recommender.search import MIN_LATE_TAIL, generator_limited, held_in_flight

REPORTED_STATS = ("p50", "p90", "p95", "p99")


@dataclass(frozen=True)
class StageStats:
    index: int
    offered_rps: float
    achieved_rps: float
    seconds: int
    requests: int
    successes: int
    error_rate: float
    errors_by_kind: dict[str, int]
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    p95_uncorrected_ms: float | None
    slo_values_ms: dict[str, float | None]
    score: float  # worst SLO term as observed / limit: <= 1 passes
    passed: bool
    cpu_percent_max: float | None
    generator_limited: bool
    # The window's later half also within the SLO: a queue still growing at the end of the
    # stage passes a short window that a longer one would fail (recommender.search).
    settled: bool = True
    # --control concurrency: the requests in flight the stage held (closed loop; its
    # offered_rps is then what it sent). None under rate control.
    concurrency: float | None = None
    # The errors whose answers carried a SageMaker error type, by type (runtime_errors).
    errors_by_type: dict[str, int] = field(default_factory=dict)
    # Why the stage says nothing about capacity (analysis.errors.untrusted), or None.
    untrusted: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A streamed response's measures (None otherwise): TTFT from the intended send, the
    # gaps between token-bearing payload parts, tokens per second of the window (output
    # counted from the parts, input approximate), and goodput: requests per second that
    # met every term of the run's SLO (recommender.loadgen.recorder).
    stream: StreamStats | None = None
    # How late requests went out (recorder `lag_us`, `wait_us`): the generator's own lateness
    # past the time a send was due and a user free (p95, max), and the wait for a free user
    # (p95). None in runs recorded before these were, and for senders that do not say.
    lag_p95_ms: float | None = None
    lag_max_ms: float | None = None
    wait_p95_ms: float | None = None
    # Closed loop: the requests in flight the endpoint held on average, by Little's law
    # (recommender.search.held_in_flight); a starved generator holds fewer than the level.
    held_in_flight: float | None = None

    @property
    def in_flight(self) -> float | None:
        """Requests in flight during the stage: the closed loop's level, or by Little's law
        (L = throughput x mean latency) under rate control."""
        if self.concurrency is not None:
            return self.concurrency
        if self.mean_ms is None:
            return None
        return self.achieved_rps * self.mean_ms / 1000.0

    @property
    def level(self) -> float:
        """What the stage set, to order stages by: requests in flight, or the offered rate."""
        return self.concurrency if self.concurrency is not None else self.offered_rps

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__
             if k not in ("extra", "stream")}  # fmt: skip
        d["score"] = None if math.isinf(self.score) else self.score
        if self.stream is not None:
            d["stream"] = asdict(self.stream)
        return d


@dataclass(frozen=True)
class StreamStats:
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_p99_ms: float | None
    itl_p50_ms: float | None
    itl_p95_ms: float | None
    itl_p99_ms: float | None
    output_tokens_per_s: float
    input_tokens_per_s: float
    output_tokens_per_request: float | None
    input_tokens_per_request: float | None
    goodput_rps: float
    streamed: int  # requests that streamed to their end


def stream_stats(recs: Sequence[dict[str, Any]], seconds: int) -> StreamStats | None:
    """The streaming measures of a stage's window; None when nothing streamed in it."""
    streamed = sum(r.get("streamed", 0) for r in recs)
    if not streamed:
        return None
    ttft = histograms.merge(r.get("ttft_co_us", "") for r in recs)
    itl = histograms.merge(r.get("itl_us", "") for r in recs)
    out = sum(r.get("tokens_out", 0) for r in recs)
    inp = sum(r.get("tokens_in", 0) for r in recs)
    return StreamStats(
        ttft_p50_ms=histograms.percentile_ms(ttft, 0.50),
        ttft_p95_ms=histograms.percentile_ms(ttft, 0.95),
        ttft_p99_ms=histograms.percentile_ms(ttft, 0.99),
        itl_p50_ms=histograms.percentile_ms(itl, 0.50),
        itl_p95_ms=histograms.percentile_ms(itl, 0.95),
        itl_p99_ms=histograms.percentile_ms(itl, 0.99),
        output_tokens_per_s=out / seconds,
        input_tokens_per_s=inp / seconds,
        output_tokens_per_request=out / streamed,
        input_tokens_per_request=inp / streamed,
        goodput_rps=sum(r.get("good", 0) for r in recs) / seconds,
        streamed=streamed,
    )


def measured_window(plan: RampPlan, index: int) -> range:
    """Whole seconds of stage `index` that count: after warm-up, before the stage ends."""
    start, end = plan.stage_bounds()[index]
    return range(math.ceil(start + plan.warmup_seconds), math.floor(end))


def stage_stats(
    records: Sequence[dict[str, Any]],
    plan: RampPlan,
    slo: Slo,
    corrected: bool = True,
    partial_last: bool = False,
) -> list[StageStats]:
    """One StageStats per stage with at least one measured second.

    `partial_last`: the run was cut short, so its last recorded second is incomplete and
    would understate throughput; leave it out.
    """
    by_second = {int(r["second"]): r for r in records}
    last = max(by_second, default=-1) - (1 if partial_last else 0)
    key = "latency_co_us" if corrected else "latency_us"
    out = []
    for i, stage in enumerate(plan.stages):
        if stage.rps <= 0:
            continue  # a rest between stages (adaptive search), not a measurement
        window = [s for s in measured_window(plan, i) if s <= last]
        if not window:
            # A stage cut short (aborted) before its warm-up ended still tells that it
            # failed: judge it on all of its whole seconds.
            start, end = plan.stage_bounds()[i]
            window = [s for s in range(math.ceil(start), math.floor(end)) if s <= last]
        if not window:
            continue
        recs = [by_second[s] for s in window if s in by_second]
        requests = sum(r["requests"] for r in recs)
        ok = sum(r["ok"] for r in recs)
        kinds: Counter[str] = Counter()
        types: Counter[str] = Counter()
        for r in recs:
            kinds.update(r["errors"])
            types.update(r.get("error_types") or {})
        hist = histograms.merge(r[key] for r in recs)
        raw = histograms.merge(r["latency_us"] for r in recs) if corrected else hist
        error_rate = (requests - ok) / requests if requests else 0.0
        judged = {h: hist if h == "latency_co_us" else histograms.merge(r.get(h, "") for r in recs)
                  for h in {t.histogram for t in slo.terms}}  # fmt: skip
        slo_values = {t.key: histograms.stat_ms(judged[t.histogram], t.stat) for t in slo.terms}
        late = _late_score(recs[len(recs) // 2 :] if len(recs) >= 2 else [], key, slo)
        settled = late <= 1.0
        # A stage is as bad as its later half: a queue still growing fails it.
        score_ = max(score(slo_values, error_rate, slo, ok), late)
        achieved = requests / len(window)
        lag = histograms.merge(r.get("lag_us", "") for r in recs)
        wait = histograms.merge(r.get("wait_us", "") for r in recs)
        cpus = [r["cpu_percent"] for r in recs if r.get("cpu_percent") is not None]
        closed = plan.control == "concurrency"
        offered = achieved if closed else stage.rps
        out.append(
            StageStats(
                index=i,
                offered_rps=offered,
                achieved_rps=achieved,
                seconds=len(window),
                requests=requests,
                successes=ok,
                error_rate=error_rate,
                errors_by_kind=dict(kinds.most_common()),
                p50_ms=histograms.percentile_ms(hist, 0.50),
                p90_ms=histograms.percentile_ms(hist, 0.90),
                p95_ms=histograms.percentile_ms(hist, 0.95),
                p99_ms=histograms.percentile_ms(hist, 0.99),
                mean_ms=histograms.mean_ms(hist),
                p95_uncorrected_ms=histograms.percentile_ms(raw, 0.95),
                slo_values_ms=slo_values,
                score=score_,
                passed=score_ <= 1.0,
                cpu_percent_max=max(cpus) if cpus else None,
                generator_limited=score_ <= 1.0 and not closed
                and generator_limited(requests, stage.rps, len(window), plan.arrivals),
                settled=settled,
                concurrency=stage.rps if closed else None,
                stream=stream_stats(recs, len(window)),
                errors_by_type=dict(types.most_common()),
                lag_p95_ms=histograms.percentile_ms(lag, 0.95),
                lag_max_ms=histograms.percentile_ms(lag, 1.0),
                wait_p95_ms=histograms.percentile_ms(wait, 0.95),
                held_in_flight=held_in_flight(ok, len(window), histograms.mean_ms(raw))
                if closed else None,
            )
        )
    return out


def _late_score(late: Sequence[dict[str, Any]], key: str, slo: Slo) -> float:
    """The SLO score of a window's later half on its percentile terms (each on its own
    histogram; `key` is the requests' latency histogram), or 0.0 where it has too few
    observations beyond a percentile to say (as the search reads it)."""
    terms = [t for t in slo.terms if t.quantile is not None and t.quantile < 1]
    if not terms or not late:
        return 0.0
    ok = sum(r["ok"] for r in late)
    worst = 0.0
    for t in terms:
        assert t.quantile is not None
        name = key if t.histogram == "latency_co_us" else t.histogram
        hist = histograms.merge(r.get(name, "") for r in late)
        n = ok if t.histogram == "latency_co_us" else int(hist.get_total_count())
        if n * (1 - t.quantile) < MIN_LATE_TAIL:
            continue
        value = histograms.stat_ms(hist, t.stat)
        worst = max(worst, math.inf if value is None else value / t.limit_ms)
    return worst


def score(values: dict[str, float | None], error_rate: float, slo: Slo, ok: int) -> float:
    """The worst ratio of observed to allowed over the SLO's terms and its error budget."""
    if ok == 0:
        return math.inf
    ratios = [
        (v if v is not None else math.inf) / t.limit_ms
        for t, v in zip(slo.terms, values.values(), strict=True)
    ]
    if slo.max_error_rate > 0:
        ratios.append(error_rate / slo.max_error_rate)
    elif error_rate > 0:
        ratios.append(math.inf)
    return max(ratios)
