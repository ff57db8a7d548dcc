"""Asynchronous endpoints: stages judged on completion latency AND backlog growth, and the
target for ApproximateBacklogSizePerInstance (pure).

A stage of an async endpoint can keep its completion latency short while its queue grows
without bound (the stage is simply too short for the wait to reach the SLO). So besides
the SLO on completion latency (queue wait + processing, from the intended send), a stage
fails when the backlog the generator sees (requests accepted and not yet seen done, one
sample a second, `backlog.jsonl`) grows over its measured window beyond the noise:

    growth = least-squares slope of the backlog x window length
    noise  = max(2 x c x instances, 5% of the stage's requests, 3 standard errors)

2 x c x instances is two full sets of busy slots (the backlog jumps by a set as requests
start and finish together); 5% of the requests means arrivals above about 1.05 x the
endpoint's throughput are caught however short the stage; the standard error (from the
fit's residuals) keeps a stable but bursty backlog (Poisson arrivals) from failing. The
stage's score becomes the worse of its SLO score and growth / noise, so capacity is
interpolated as for real-time variants; when the first failing stage failed by its
backlog, the endpoint was saturated there, and its completion throughput (completions per
second, which a saturated queue delivers at exactly the service rate) is the capacity
measured directly.

The target (derivation, shown in the report): with c requests in service per instance and
instances completing mu requests per second each, a request that arrives behind B queued
per instance (B counts those in service, as ApproximateBacklogSizePerInstance does) waits
about (B - c) / mu before it starts, then takes P to process. It meets the SLO limit L
while (B - c) / mu + P <= L, that is B <= c + mu x (L - P) = c + mu x W, with W the
queue-wait budget the SLO leaves after processing. The policy keeps B near its target, so

    target = c + mu x W x safety_factor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from recommender import histograms, metrics
from recommender.analysis.capacity import Capacity, capacity_at_slo
from recommender.analysis.checks import Finding
from recommender.analysis.recommend import Recommendation, check_safety_factor
from recommender.analysis.stages import StageStats, score, stage_stats
from recommender.errors import ConfigError
from recommender.plan import Slo
from recommender.runs import RunData

METRIC = "ApproximateBacklogSizePerInstance"
GROWTH_SHARE = 0.05  # of a stage's requests: backlog growth beyond this is not noise
MIN_POINTS = 4  # backlog samples a window needs for a slope


@dataclass(frozen=True)
class BacklogGrowth:
    start: float  # fitted backlog at the window's start and end
    end: float
    growth: float
    limit: float
    seconds: int

    @property
    def grew(self) -> bool:
        return bool(self.growth > self.limit)

    @property
    def ratio(self) -> float:
        return max(0.0, self.growth) / self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "grew": self.grew}


def backlog_growth(timeline: Sequence[Mapping[str, Any]], start: float, end: float,
                   rate: float, slots: int) -> BacklogGrowth | None:  # fmt: skip
    """The backlog's growth over [start, end) (seconds of the run), or None with too few
    samples."""
    points = [(float(r["second"]), float(r["outstanding"])) for r in timeline
              if start <= float(r["second"]) < end]  # fmt: skip
    if len(points) < MIN_POINTS:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    window = float(x[-1] - x[0] + 1.0)
    residuals = y - (intercept + slope * x)
    spread = float(np.sum((x - x.mean()) ** 2))
    se = math.sqrt(float(np.sum(residuals**2)) / (len(x) - 2) / spread) if spread else 0.0
    limit = float(max(2.0 * slots, GROWTH_SHARE * rate * window, 3.0 * se * window, 1.0))
    return BacklogGrowth(float(intercept + slope * x[0]), float(intercept + slope * x[-1]),
                         float(slope * window), limit, len(points))  # fmt: skip


def completion_rps(timeline: Sequence[Mapping[str, Any]], start: float, end: float
                   ) -> float | None:  # fmt: skip
    """Requests seen done per second over [start, end): a saturated endpoint's throughput."""
    inside = [r for r in timeline if start <= float(r["second"]) < end]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    seconds = float(last["second"]) - float(first["second"])
    done = (last["completed"] + last["failed"]) - (first["completed"] + first["failed"])
    return done / seconds if seconds > 0 else None


@dataclass(frozen=True)
class StageVerdict:
    passed: bool
    reason: str

    @property
    def outcome(self) -> str:
        return "pass" if self.passed else "fail"


def judge_stage(records: Sequence[Mapping[str, Any]], timeline: Sequence[Mapping[str, Any]],
                rate: float, start: float, end: float, warmup: float, slo: Slo,
                slots: int) -> StageVerdict:  # fmt: skip
    """A stage just played, judged on its own records (the load generator's stop rule)."""
    window = [r for r in records if start + warmup <= r["second"] < end] or list(records)
    requests = sum(int(r["requests"]) for r in window)
    ok = sum(int(r["ok"]) for r in window)
    hist = histograms.merge(r["latency_co_us"] for r in window)
    values = {t.stat: histograms.stat_ms(hist, t.stat) for t in slo.terms}
    error_rate = (requests - ok) / requests if requests else 0.0
    s = score(values, error_rate, slo, ok)
    shown = "; ".join(f"{k} {v / 1000:.2f}s" if v is not None else f"{k} -"
                      for k, v in values.items())  # fmt: skip
    reason = f"errors {error_rate:.2%}; completion {shown}"
    growth = backlog_growth(timeline, start + warmup, end, rate, slots)
    if growth is not None:
        reason += f"; backlog {growth.start:.0f} -> {growth.end:.0f}"
        if growth.grew:
            reason += f" (grew by {growth.growth:.0f} > {growth.limit:.0f})"
    return StageVerdict(s <= 1.0 and not (growth is not None and growth.grew), reason)


def async_stages(run: RunData, slo: Slo, status: str) -> list[StageStats]:
    """The stage table with each stage's backlog growth and completion throughput, and
    the backlog's verdict folded into `passed` and `score`."""
    stages = stage_stats(run.seconds, run.plan, slo, partial_last=status != "complete")
    bounds = run.plan.stage_bounds()
    slots = slots_per_instance(run) * run.instances
    out = []
    for s in stages:
        start, end = bounds[s.index]
        growth = backlog_growth(run.backlog, start + run.plan.warmup_seconds, end,
                                s.offered_rps, slots)  # fmt: skip
        done_rps = completion_rps(run.backlog, start + run.plan.warmup_seconds, end)
        extra = {"backlog": growth.to_dict() if growth else None, "completion_rps": done_rps}
        if growth is not None:
            new_score = max(s.score, growth.ratio)
            s = replace(s, score=new_score, passed=s.passed and not growth.grew,
                        generator_limited=False)  # fmt: skip
        out.append(replace(s, extra=extra))
    return out


def slots_per_instance(run: RunData) -> int:
    """MaxConcurrentInvocationsPerInstance as the run found it (1 when SageMaker chose)."""
    return int((run.meta.get("async") or {}).get("slots_per_instance") or 1)


def async_capacity(stages: Sequence[StageStats], instances: int) -> Capacity:
    """capacity_at_slo, with the saturated stage's completion throughput as the point when
    the first failing stage failed by its backlog."""
    cap = capacity_at_slo(stages, instances)
    if cap.method != "interpolated" or cap.failing_stage is None:
        return cap
    bad = next(s for s in stages if s.index == cap.failing_stage)
    ok = next(s for s in stages if s.index == cap.passing_stage)
    growth = (bad.extra.get("backlog") or {})
    done = bad.extra.get("completion_rps")
    if growth.get("grew") and done and ok.achieved_rps <= done <= bad.achieved_rps:
        cap = replace(cap, rps=done, rps_per_instance=done / instances)
    interval = cap.interval_rps_per_instance
    return replace(cap, ci_rps_per_instance=interval,
                   ci_method="the bracketing stages (async: the saturated stage's "
                             "completion throughput is the point)")  # fmt: skip


def processing_seconds(stages: Sequence[StageStats], slo: Slo) -> float | None:
    """P: the SLO statistic of completion latency at the lightest passing stage, where
    requests hardly queue (it includes S3 reads/writes and the polling resolution, so W
    comes out on the safe side)."""
    passing = sorted((s for s in stages if s.passed), key=lambda s: s.offered_rps)
    if not passing:
        return None
    value = passing[0].slo_values_ms.get(slo.terms[0].stat)
    return None if value is None else value / 1000.0


def recommend_backlog(capacity: Capacity, stages: Sequence[StageStats], slo: Slo,
                      slots: int, safety_factor: float) -> Recommendation | None:  # fmt: skip
    """target = c + mu x W x safety_factor (the module doc's derivation); None when the
    run gives no mu or the SLO leaves no time to queue."""
    check_safety_factor(safety_factor)
    mu = capacity.rps_per_instance
    p = processing_seconds(stages, slo)
    if not mu or p is None:
        return None
    limit = min(t.limit_ms for t in slo.terms) / 1000.0
    w = limit - p
    if w <= 0:
        return None
    value = slots + mu * w * safety_factor
    return Recommendation(
        metric=METRIC,
        target_value=value,
        safety_factor=safety_factor,
        rps_per_instance=mu,
        formula=(
            f"target = c + mu x W x safety_factor = {slots} + {mu:.2f} x {w:.2f} x "
            f"{safety_factor:g} = {value:.1f} queued requests per instance "
            f"(c: MaxConcurrentInvocationsPerInstance; mu: completions/s per instance; "
            f"W = SLO {limit:g}s - processing {p:.2f}s: a request behind B per instance "
            f"waits (B - c) / mu, then P)"
        ),
    )


def async_findings(stages: Sequence[StageStats], capacity: Capacity,
                   rec: Recommendation | None, run: RunData,
                   slo: Slo) -> list[Finding]:  # fmt: skip
    out = []
    if not (run.meta.get("async") or {}).get("slots_per_instance"):
        out.append(Finding("async_concurrency_unknown",
                           "the endpoint config sets no MaxConcurrentInvocationsPerInstance "
                           "(SageMaker chooses it): c = 1 was assumed in the target; set it "
                           "in the endpoint config for an exact target"))  # fmt: skip
    if capacity.method == "lower_bound":
        out.append(Finding("no_failing_stage",
                           "no stage saturated the endpoint (its backlog never grew): mu is a "
                           "lower bound; raise --max-rps"))  # fmt: skip
    if capacity.rps_per_instance and rec is None:
        out.append(Finding("no_queue_budget",
                           f"the SLO ({slo}) leaves no time to queue after processing: "
                           "loosen the SLO, or make processing faster"))  # fmt: skip
    unfinished = sum(s.errors_by_kind.get("unfinished", 0) for s in stages)
    if unfinished:
        out.append(Finding("unfinished_requests",
                           f"{unfinished} request(s) were never seen done (the run was "
                           "interrupted): they count as errors"))  # fmt: skip
    return out


ASYNC_METRICS = ("ApproximateBacklogSize", "ApproximateBacklogSizePerInstance",
                 "ApproximateAgeOfOldestRequest", "HasBacklogWithoutCapacity")  # fmt: skip


def cloudwatch_view(run: RunData, stages: Sequence[StageStats]) -> dict[int, dict[str, Any]]:
    """Per stage: the queue's CloudWatch metrics over the periods wholly inside it."""
    info = run.meta.get("cloudwatch") or {}
    try:
        table = metrics.read_csv(run.path / str(info.get("file", "cloudwatch.csv")))
    except Exception:  # noqa: BLE001 - a bad file only costs the view
        return {}
    if not table or not run.meta.get("started_at"):
        return {}
    t0 = datetime.fromisoformat(run.meta["started_at"]).timestamp()
    bounds = run.plan.stage_bounds()
    out: dict[int, dict[str, Any]] = {}
    for s in stages:
        start, end = t0 + bounds[s.index][0] + run.plan.warmup_seconds, t0 + bounds[s.index][1]
        inside = [r for r in table if r["epoch"] >= start and r["epoch"] + r["period"] <= end]
        if not inside:
            continue

        def vals(metric: str, stat: str) -> list[float]:
            return [float(r["value"]) for r in inside  # noqa: B023 - used at once
                    if r["metric"] == metric and r["stat"] == stat]  # fmt: skip

        view: dict[str, Any] = {"periods": len({r["epoch"] for r in inside})}
        for m in ASYNC_METRICS:
            avg, top = vals(m, "Average"), vals(m, "Maximum")
            view[m] = {"average": sum(avg) / len(avg) if avg else None,
                       "maximum": max(top) if top else None}  # fmt: skip
        processed = vals("InvocationsProcessed", "Sum")
        view["InvocationsProcessed"] = sum(processed) if processed else None
        latency = vals("ModelLatency", "Average")
        view["ModelLatency_ms"] = sum(latency) / len(latency) / 1000.0 if latency else None
        out[s.index] = view
    return out


def check_async_slo(slo: Slo, poll_interval: float, completion_timeout: float) -> None:
    """An SLO a run against an async endpoint can judge: above the polling resolution,
    below the completion timeout."""
    for t in slo.terms:
        if t.limit_ms < 4 * poll_interval * 1000.0:
            raise ConfigError(
                f"--slo {t}: an asynchronous endpoint's completion is seen by polling S3 "
                f"every {poll_interval:g}s, too coarse to judge {t.limit_ms:g}ms",
                f"give a limit of at least {4 * poll_interval:g}s (e.g. \"p95<=120s\")",
            )
        if t.limit_ms / 1000.0 >= completion_timeout:
            raise ConfigError(
                f"--slo {t}: its limit is beyond --completion-timeout {completion_timeout:g}s",
                "raise --completion-timeout above the SLO's limit",
            )
    if math.isinf(completion_timeout):
        raise ConfigError("--completion-timeout must be finite")
