"""Replay traffic through the backlog policy of an asynchronous endpoint, minute by minute
(pure): target tracking on ApproximateBacklogSizePerInstance, and, with
`scale_from_zero`, the step policy on HasBacklogWithoutCapacity that adds an instance when
requests wait with none in service.

Per minute: the arrivals join the queue; the instances in service complete at most
n x mu x 60 of it (mu: the run's completions per second per instance); what is left is the
backlog B (ApproximateBacklogSize; per instance B / n). The alarms are simulate.py's (3
datapoints above target out, 15 below 90% of target in, cooldowns, new instances serve
`provision_minutes` after the scale-out); desired = ceil(B / target) within Min/Max. At
zero instances the backlog per instance is undefined, so only the step policy (2 of 2
minutes with a backlog) brings the first instance. A request arriving at the end of a
minute completes after about max(0, B - c n) / (n mu) + P (recommender.analysis.
asynchronous); the minute violates the SLO when that passes its limit, or when requests
wait with no instance at all.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from recommender.analysis import Analysis
from recommender.analysis.asynchronous import processing_seconds
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR, check_safety_factor
from recommender.errors import ConfigError, InsufficientDataError
from recommender.simulate import (
    SWEEP_FACTORS,
    Policy,
    SafetyFactorChoice,
    ScalingEvent,
    Simulation,
    SweepRow,
    Totals,
    explain_choice,
    scale_in,
)
from recommender.traffic import TrafficSeries

STEP_DATAPOINTS = 2  # HasBacklogWithoutCapacity >= 1 for 2 of 2 minutes (apply's alarm)


@dataclass(frozen=True, kw_only=True)
class BacklogPolicy(Policy):
    """The async endpoint's policy: MinCapacity 0 allowed (with scale_from_zero)."""

    scale_from_zero: bool = False

    def below_floor(self, lo: int) -> ConfigError | None:
        return None if lo >= 0 else ConfigError(f"--min-capacity must be >= 0 (got {lo})")


@dataclass(frozen=True)
class BacklogEndpoint:
    """What the run measured: mu (completions/s per instance), c, P and the SLO's limit."""

    mu: float
    slots: int
    processing_s: float
    limit_s: float
    stat: str

    def to_dict(self) -> dict[str, Any]:
        return {"mu_rps_per_instance": self.mu, "slots_per_instance": self.slots,
                "processing_s": self.processing_s, "slo_limit_s": self.limit_s}  # fmt: skip

    def target(self, safety_factor: float) -> float:
        return self.slots + self.mu * (self.limit_s - self.processing_s) * safety_factor


def endpoint_from_analysis(analysis: Analysis) -> BacklogEndpoint:
    mu = analysis.capacity.rps_per_instance
    p = processing_seconds(analysis.stages, analysis.slo)
    if not mu or p is None:
        raise InsufficientDataError("the run measured no throughput for the backlog policy",
                                    "re-run until a stage passes and one saturates")  # fmt: skip
    term = min(analysis.slo.terms, key=lambda t: t.limit_ms)
    slots = int((analysis.run.get("async") or {}).get("slots_per_instance_used") or 1)
    return BacklogEndpoint(mu, slots, p, term.limit_ms / 1000.0, term.stat)


def simulate_backlog(traffic: TrafficSeries, endpoint: BacklogEndpoint, policy: BacklogPolicy,
                     *, safety_factor: float | None = None,
                     instance_price: float | None = None) -> Simulation:  # fmt: skip
    target, lo, hi = policy.bounds()
    if lo == 0 and not policy.scale_from_zero:
        raise ConfigError("MinCapacity 0 without --scale-from-zero never scales up again",
                          "add --scale-from-zero, or --min-capacity 1")  # fmt: skip
    policy = replace(policy, target_value=target)
    req = traffic.requests_per_minute.tolist()
    n_min = traffic.minutes
    per_minute = endpoint.mu * 60.0
    out_cd = math.ceil(policy.scale_out_cooldown / 60)
    in_cd = math.ceil(policy.scale_in_cooldown / 60)
    desired = serving = max(lo, min(hi, math.ceil(req[0] / 60.0 / endpoint.mu))) if req else lo
    pending: deque[list[int]] = deque()
    queue = 0.0
    in_service, desired_at, wait_ms, violating = [], [], [], []
    events: list[ScalingEvent] = []
    high = low = empty = 0
    out_until = in_until = -1
    for m in range(n_min):
        while pending and pending[0][0] <= m:
            serving += pending.popleft()[1]
        in_service.append(serving)
        desired_at.append(desired)
        queue = max(0.0, queue + req[m] - serving * per_minute)
        if serving:
            wait = max(0.0, queue - endpoint.slots * serving) / (serving * endpoint.mu)
            wait += endpoint.processing_s
        else:
            wait = math.inf if queue > 0 else endpoint.processing_s
        wait_ms.append(wait * 1000.0)
        violating.append(wait > endpoint.limit_s)
        metric = queue / serving if serving else 0.0
        high = high + 1 if serving and metric > target else 0
        low = low + 1 if serving and metric < policy.scale_in_ratio * target else 0
        empty = empty + 1 if serving == 0 and desired == 0 and queue > 0 else 0
        want = max(lo, min(hi, math.ceil(queue / target - 1e-9)))
        if policy.scale_from_zero and empty >= STEP_DATAPOINTS and desired < hi:
            want, empty = desired + 1, 0
        if (high >= policy.scale_out_datapoints or want > desired == 0) and want > desired:
            pending.append([m + 1 + policy.provision_minutes, want - desired])
            events.append(ScalingEvent(m, "out", desired, want, metric))
            desired, out_until = want, m + out_cd
        elif (low >= policy.scale_in_datapoints and not policy.disable_scale_in
              and m >= out_until and m >= in_until and want < desired):  # fmt: skip
            events.append(ScalingEvent(m, "in", desired, want, metric))
            serving = scale_in(pending, serving, desired - want)
            desired, in_until = want, m + in_cd
    serving_a = np.array(in_service, dtype=np.int64)
    desired_a = np.array(desired_at, dtype=np.int64)
    violating_a = np.array(violating, dtype=np.bool_)
    req_a = traffic.requests_per_minute
    hours = float(desired_a.sum()) / 60.0
    totals = Totals(
        minutes=n_min, violating_minutes=int(violating_a.sum()), requests=float(req_a.sum()),
        requests_outside_slo=float(req_a[violating_a].sum()), requests_erroring=0.0,
        instance_hours=hours, cost_usd=hours * instance_price if instance_price else None,
        scale_out_events=sum(e.kind == "out" for e in events),
        scale_in_events=sum(e.kind == "in" for e in events),
        capped_minutes=0, in_service_min=int(serving_a.min()), in_service_max=int(serving_a.max()),
    )  # fmt: skip
    lat = np.array([w if math.isfinite(w) else np.nan for w in wait_ms], dtype=np.float64)
    return Simulation(policy=policy, safety_factor=safety_factor, capacity_rps=endpoint.mu,
                      max_rps=endpoint.mu, latency_stat=f"completion {endpoint.stat}",
                      traffic=traffic, in_service=np.maximum(serving_a, 1), desired=desired_a,
                      latency_ms=lat, violating=violating_a,
                      erroring=np.zeros(n_min, dtype=np.float64), events=tuple(events),
                      totals=totals, instance_price=instance_price,
                      metric="backlog")  # fmt: skip


def for_factor(policy: BacklogPolicy, endpoint: BacklogEndpoint, traffic: TrafficSeries,
               safety_factor: float) -> BacklogPolicy:  # fmt: skip
    """The policy at the target c + mu x W x safety_factor; MinCapacity 1 (0 with
    scale_from_zero) and MaxCapacity enough for the peak x 1.5 unless given."""
    target = endpoint.target(check_safety_factor(safety_factor))
    lo = policy.min_capacity if policy.min_capacity is not None else (
        0 if policy.scale_from_zero else 1)
    hi = policy.max_capacity or max(1, lo, math.ceil(traffic.peak_rps / endpoint.mu * 1.5))
    return replace(policy, target_value=target, min_capacity=min(lo, hi), max_capacity=hi)


def choose_backlog_factor(traffic: TrafficSeries, endpoint: BacklogEndpoint,
                          policy: BacklogPolicy, *, violation_budget: int = 0,
                          instance_price: float | None = None) -> SafetyFactorChoice:  # fmt: skip
    """`--safety-factor auto` for the backlog policy: the highest factor within budget."""
    factors = sorted({*SWEEP_FACTORS, DEFAULT_SAFETY_FACTOR})
    sims = {f: simulate_backlog(traffic, endpoint, for_factor(policy, endpoint, traffic, f),
                                safety_factor=f, instance_price=instance_price)
            for f in factors}  # fmt: skip
    rows = tuple(SweepRow.of(sims[f]) for f in factors)
    ok = [r for r in rows if r.violating_minutes <= violation_budget]
    chosen = max(ok, key=lambda r: r.safety_factor) if ok else None
    aws = SweepRow.of(sims[DEFAULT_SAFETY_FACTOR])
    return SafetyFactorChoice(rows, violation_budget, chosen, aws,
                              explain_choice(chosen, aws, rows, violation_budget))  # fmt: skip
