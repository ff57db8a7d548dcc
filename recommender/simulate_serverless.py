"""Replay traffic through target tracking on a serverless variant's provisioned concurrency,
minute by minute (pure).

The policy is `SageMakerVariantProvisionedConcurrencyUtilization`: the scaled capacity is
the variant's ProvisionedConcurrency (P), bounded by MinCapacity/MaxCapacity, and the
metric is ServerlessProvisionedConcurrencyUtilization, the executions running on
provisioned concurrency over P. The stepping (alarms, cooldowns, the proportional rule,
new capacity serving `provision_minutes` after a scale-out) is simulate.py's own loop
(`simulate.track`), fed the minute's busy executions instead of its requests.

Per minute, from what the run measured (analysis.serverless):
- busy executions a = requests/s x W (Little's law; W the warm latency);
- the metric is min(a, P) / P: executions beyond P run on demand and are not in it, so it
  never passes 1.0 (a target of 1.0 therefore never scales out);
- the share of requests that find all P busy and spill over to on-demand executions is
  Erlang's loss formula B(P, a) (random arrivals); those beyond MaxConcurrency M, B(M, a),
  are throttled (ThrottlingException);
- cold starts: a minute that spills uses D = min(M, ceil(R x (C + W))) - P on-demand
  executions (R requests/s, C the run's cold latency: the requests arriving while one
  starts need one each, as the sizing's rise from idle and the local server count them);
  those that ran in the previous minute are still warm (AWS documents no idle timeout: it
  is taken to be at least a minute), the rest start cold, one cold request each. The
  sizing (analysis.serverless) is more cautious: it counts every spilled request as cold;
- the minute violates the SLO when its cold share passes the tail allowance (1 - Q) of an
  SLO term pQ that a cold request breaks (the minute's pQ is then a cold latency), or its
  throttled share passes the SLO's error rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from recommender.analysis import Analysis
from recommender.analysis.serverless import (
    COLD_BUDGET_SHARE,
    POLICY_METRIC,
    cold_budget,
    erlang_b,
    size_serverless,
)
from recommender.errors import ConfigError, InsufficientDataError
from recommender.simulate import (
    SWEEP_FACTORS,
    Policy,
    SafetyFactorChoice,
    Simulation,
    SweepRow,
    Totals,
    track,
)
from recommender.traffic import TrafficSeries

ASSUMPTIONS = (
    "cold starts: one request per on-demand execution started when a minute's requests "
    "spill beyond provisioned concurrency (Erlang's loss formula, random arrivals); one "
    "used in the previous minute is still warm (AWS documents no idle timeout); new "
    "provisioned concurrency serves --provision-minutes after the scale-out (AWS documents "
    "no figure: measure yours)"
)
# `--safety-factor auto` sweeps the utilization target itself over these values.
SWEEP_TARGETS = SWEEP_FACTORS  # 1.0 never scales out (the metric stops at 1)


@dataclass(frozen=True)
class ServerlessEndpoint:
    """What the run measured of the variant, per execution."""

    warm_s: float  # W: how long a warm request holds an execution
    cold_ms: float | None  # a cold request's latency (None: none measured)
    warm_ms: float
    max_concurrency: int
    cold_allowance: float | None  # share of requests that may be cold in a minute
    error_rate: float  # the SLO's error budget (throttled share allowed)
    stat: str

    def to_dict(self) -> dict[str, Any]:
        return {"warm_latency_ms": self.warm_ms, "cold_latency_ms": self.cold_ms,
                "max_concurrency": self.max_concurrency,
                "cold_share_allowed": self.cold_allowance,
                "max_error_rate": self.error_rate}  # fmt: skip


def endpoint_from_analysis(analysis: Analysis) -> ServerlessEndpoint:
    s = analysis.serverless
    if s is None:
        raise ConfigError("the run did not measure a serverless variant")
    warm_ms = s.warm_latency_ms or (1000.0 / s.rps_per_concurrency if s.rps_per_concurrency
                                    else None)  # fmt: skip
    if not warm_ms:
        raise InsufficientDataError("the run measured no warm latency to simulate with",
                                    "re-run the test starting from a lower rate")  # fmt: skip
    budget = cold_budget(analysis.slo, s.cold_latency_ms)
    return ServerlessEndpoint(
        warm_s=warm_ms / 1000.0, cold_ms=s.cold_latency_ms, warm_ms=warm_ms,
        max_concurrency=s.max_concurrency,
        cold_allowance=budget / COLD_BUDGET_SHARE if budget is not None else None,
        error_rate=analysis.slo.max_error_rate, stat=analysis.slo.terms[0].key,
    )  # fmt: skip


def policy_for(analysis: Analysis, policy: Policy, traffic: TrafficSeries,
               target: float | None = None) -> Policy:  # fmt: skip
    """The policy to replay: the target given (else the sizing's for the traffic's peak),
    MinCapacity and MaxCapacity given, else the sizing's (analysis.serverless.size_serverless
    at the traffic's peak and lowest minute, as `report --peak-rps` sizes them)."""
    assert analysis.serverless is not None
    sizing = size_serverless(analysis.serverless, analysis.slo, traffic.peak_rps or 1e-9,
                             traffic.min_rps or None)  # fmt: skip
    value = target if target is not None else policy.target()
    value = value if value is not None else sizing.target_utilization
    if not 0 < value <= 1:
        raise ConfigError(f"the {POLICY_METRIC} target must be in (0, 1] (got {value:g})",
                          "it is a share of provisioned concurrency in use, e.g. 0.7")  # fmt: skip
    hi = policy.max_capacity or sizing.max_capacity
    lo = min(policy.min_capacity or sizing.min_capacity, hi)
    if hi > sizing.max_concurrency:
        raise ConfigError(f"--max-capacity {hi} is above the variant's MaxConcurrency "
                          f"{sizing.max_concurrency}",
                          "provisioned concurrency cannot exceed MaxConcurrency")  # fmt: skip
    return replace(policy, target_value=value, min_capacity=lo, max_capacity=hi).check()


def simulate_provisioned(traffic: TrafficSeries, endpoint: ServerlessEndpoint, policy: Policy,
                         *, safety_factor: float | None = None) -> Simulation:  # fmt: skip
    """Replay `traffic` through the provisioned-concurrency policy (module doc)."""
    target, lo, hi = policy.bounds()
    policy = replace(policy, target_value=target)
    req = traffic.requests_per_minute
    busy = (req / 60.0 * endpoint.warm_s).tolist()
    first = min(hi, max(lo, math.ceil(busy[0] / target - 1e-9))) if busy else lo
    in_service, desired_at, events, capped = track(busy, policy, first, saturates=True)
    pc = np.array(in_service, dtype=np.int64)
    desired = np.array(desired_at, dtype=np.int64)
    rps = req / 60.0
    spill = np.array([erlang_b(int(p), a) for p, a in zip(pc, busy, strict=True)])
    throttled_share = np.array([erlang_b(endpoint.max_concurrency, a) for a in busy])
    throttled = req * throttled_share
    spilled = req * np.maximum(spill - throttled_share, 0.0)
    rise_s = (endpoint.cold_ms or 0.0) / 1000.0 + endpoint.warm_s
    used = np.minimum(endpoint.max_concurrency, np.ceil(rps * rise_s - 1e-9)) - pc
    on_demand = np.where(spilled >= 0.5, np.maximum(used, 0.0), 0.0)
    # Ran last minute: still warm. The first minute starts settled, as `simulate` does.
    warm = np.concatenate((on_demand[:1], on_demand[:-1]))
    cold = np.minimum(np.maximum(on_demand - warm, 0.0), spilled)
    cold_share = np.divide(cold, req, out=np.zeros_like(cold), where=req > 0)
    violating = throttled_share > endpoint.error_rate
    if endpoint.cold_allowance is not None:
        violating |= cold_share > endpoint.cold_allowance
    utilization = np.minimum(np.array(busy), pc) / pc
    # The minute's SLO statistic: a cold latency once the cold share passes the allowance.
    cold_ms = endpoint.cold_ms if endpoint.cold_ms is not None else endpoint.warm_ms
    breaks = cold_share > (endpoint.cold_allowance if endpoint.cold_allowance is not None
                           else 1.0)  # fmt: skip
    latency = np.where(breaks, cold_ms, endpoint.warm_ms).astype(np.float64)
    hours = float(desired.sum()) / 60.0
    totals = Totals(
        minutes=traffic.minutes, violating_minutes=int(violating.sum()),
        requests=float(req.sum()), requests_outside_slo=float(req[violating].sum()),
        requests_erroring=float(throttled.sum()), instance_hours=hours, cost_usd=None,
        scale_out_events=sum(e.kind == "out" for e in events),
        scale_in_events=sum(e.kind == "in" for e in events), capped_minutes=capped,
        in_service_min=int(pc.min()) if len(pc) else 0,
        in_service_max=int(pc.max()) if len(pc) else 0,
    )  # fmt: skip
    return Simulation(
        policy=policy, safety_factor=safety_factor, capacity_rps=1.0 / endpoint.warm_s,
        max_rps=1.0 / endpoint.warm_s, latency_stat=endpoint.stat, traffic=traffic,
        in_service=pc, desired=desired, latency_ms=latency, violating=violating,
        erroring=throttled, events=tuple(events), totals=totals, instance_price=None,
        metric="provisioned_concurrency", cold_starts=cold, utilization=utilization,
    )  # fmt: skip


def choose_target(traffic: TrafficSeries, endpoint: ServerlessEndpoint,
                  policies: dict[float, Policy], violation_budget: int = 0
                  ) -> SafetyFactorChoice:  # fmt: skip
    """`--safety-factor auto` on a serverless run: sweep the utilization target itself
    (`policies`: target -> the policy at it) and keep the highest (least provisioned
    concurrency) whose simulated SLO-violating minutes stay within the budget. A row's
    `safety_factor` is the target: there is no factor between the run and the target."""
    sims = {t: simulate_provisioned(traffic, endpoint, p, safety_factor=t)
            for t, p in sorted(policies.items())}  # fmt: skip
    rows = tuple(SweepRow.of(s) for s in sims.values())
    ok = [r for r in rows if r.violating_minutes <= violation_budget]
    chosen = max(ok, key=lambda r: r.target_value) if ok else None
    sized = rows[0]
    if chosen is None:
        best = min(rows, key=lambda r: (r.violating_minutes, -r.target_value))
        text = (f"auto: no utilization target from {rows[0].target_value:.2f} to "
                f"{rows[-1].target_value:.2f} keeps within {violation_budget} violating "
                f"minute(s) (fewest: {best.target_value:.2f} with {best.violating_minutes})")
    else:
        text = (f"auto: utilization target {chosen.target_value:.2f}: "
                f"{chosen.violating_minutes} violating minute(s), "
                f"{chosen.instance_hours:,.1f} provisioned-concurrency-hours")  # fmt: skip
    return SafetyFactorChoice(rows, violation_budget, chosen, sized, text)
