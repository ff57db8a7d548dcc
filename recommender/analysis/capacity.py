"""Highest throughput within the SLO (pure).

Method "interpolated": the stages are taken in order of offered rate (a fixed ramp plays
them so; the adaptive search jumps about); the capacity lies between the highest-rate stage
that passed below the lowest-rate stage that failed. Each stage's SLO score (worst observed /
allowed ratio, 1.0 at the boundary) is interpolated linearly against achieved throughput
to where it crosses 1.0. The bracket [last passing, first failing] (the failing end at most
the most any stage served: the saturation) is reported as the interval the true value lies
in, assuming latency grows with load.
Method "lower_bound": no stage failed; the highest passing throughput is a lower bound.
Method "model_extrapolation": no stage failed, and the fitted latency model (analysis.fit)
says where the SLO would break, close enough beyond the data to trust (`extrapolate`).
Method "none": the first stage already failed; there is no estimate.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from recommender.analysis.fit import LatencyFit
from recommender.analysis.stages import StageStats

MIN_R2 = 0.9  # a fit worse than this is not trusted beyond the data
MAX_EXTRAPOLATION = 1.5  # never claim more than this times the highest measured throughput
KNEE_SHOWN = 1.25  # latency at the top of the data / the fit's flat part, to extrapolate


@dataclass(frozen=True)
class Capacity:
    method: str  # "interpolated" | "lower_bound" | "model_extrapolation" | "none"
    instances: int
    rps: float | None
    rps_per_instance: float | None
    interval_rps_per_instance: tuple[float, float] | None
    passing_stage: int | None
    failing_stage: int | None
    # 95% confidence interval: sampling noise (block bootstrap) and stage resolution.
    ci_rps_per_instance: tuple[float, float] | None = None
    ci_method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("interval_rps_per_instance", "ci_rps_per_instance"):
            d[key] = list(d[key]) if d[key] else None
        return d


def interpolate_crossing(x0: float, s0: float, x1: float, s1: float) -> float:
    """x where the line through (x0, s0) and (x1, s1) reaches score 1.0, kept in [x0, x1].

    s0 <= 1 < s1. An infinite s1 (a stage with no successes), or one no worse than s0 (no
    slope to follow), puts the crossing at x0.
    """
    if x1 <= x0 or math.isinf(s1) or s1 <= s0:
        return x0
    x = x0 + (1.0 - s0) * (x1 - x0) / (s1 - s0)
    return min(max(x, x0), x1)


def refuted(stages: Sequence[StageStats], checks: Collection[int] = ()) -> set[int]:
    """Indices of failed stages that a later stage refuted by passing: one at the same level
    (the search's re-test of its failing end), or one of `checks` above it (the stage the
    search played to corroborate its failing end from above: recommender.search). Either
    pass says the failure was something else slowing that one stage, not the load. Only
    those: in a fixed ramp a pass above a failure is as likely the chance verdict."""
    out = set()
    for s in stages:
        if not s.passed and any(t.passed and t.index > s.index
                                and (math.isclose(t.level, s.level, rel_tol=1e-6)
                                     or (t.index in checks and t.level > s.level))
                                for t in stages):  # fmt: skip
            out.add(s.index)
    return out


def capacity_at_slo(
    stages: Sequence[StageStats], instances: int, checks: Collection[int] = ()
) -> Capacity:
    """The capacity between the highest passing stage under the first failure (by level)
    and that failure, leaving out failures a later stage refuted (`refuted`)."""
    noise = refuted(stages, checks)
    # No capacity within an SLO exceeds the most any stage served (successes per second): a
    # failing stage past saturation sends more than that, its excess answered 503 at once.
    served = measured_rps(stages, default=math.inf)
    stages = sorted((s for s in stages if s.index not in noise),
                    key=lambda s: s.level)  # stable: replays keep their order  # fmt: skip
    if not stages:
        return Capacity("none", instances, None, None, None, None, None)
    first_fail = next((k for k, s in enumerate(stages) if not s.passed), None)
    if first_fail == 0:
        return Capacity("none", instances, None, None, None, None, stages[0].index)
    if first_fail is None:
        best = max(stages, key=lambda s: s.achieved_rps)
        rps = best.achieved_rps
        return Capacity("lower_bound", instances, rps, rps / instances, None, best.index, None)
    ok, bad = stages[first_fail - 1], stages[first_fail]
    rps = interpolate_crossing(ok.achieved_rps, ok.score, bad.achieved_rps, bad.score)
    hi = max(min(bad.achieved_rps, served), ok.achieved_rps)
    return Capacity(
        "interpolated",
        instances,
        rps,
        rps / instances,
        (ok.achieved_rps / instances, hi / instances),
        ok.index,
        bad.index,
    )


def measured_rps(stages: Sequence[StageStats], default: float | None = None) -> float:
    """The highest throughput measured (the saturation, when a stage reached it): successes
    per second of the best stage. `default` when no stage measured a second (None: raise)."""
    served = [s.successes / s.seconds for s in stages if s.seconds]
    if not served and default is not None:
        return default
    return max(served)


def extrapolate(
    capacity: Capacity, fits: Sequence[LatencyFit], stages: Sequence[StageStats]
) -> Capacity:
    """With no failing stage, the fitted model may say where the SLO would break, if it fits
    well and the point is not far beyond what was measured: then method
    "model_extrapolation" (checks.extrapolated warns about it); else `capacity` unchanged.

    Method: every fit (one per SLO term) must have R^2 >= MIN_R2 and show its knee in the data;
    the lowest of their crossings is taken, if within MAX_EXTRAPOLATION x the measured rate.
    """
    measured = measured_rps(stages)
    # Only a curve whose knee shows in the data says where it goes next: latency at the top
    # of the measured range must already be well above the flat part.
    crossings = [
        f.x_at_limit
        for f in fits
        if f.x_at_limit is not None
        and f.r2 >= MIN_R2
        and float(f.latency_ms(np.array([measured]))[0]) >= KNEE_SHOWN * f.a_ms
    ]
    if len(crossings) != len(fits) or not crossings:
        return capacity
    x = min(crossings)
    if not measured < x <= MAX_EXTRAPOLATION * measured:
        return capacity
    n = capacity.instances
    return replace(capacity, method="model_extrapolation", rps=x, rps_per_instance=x / n,
                   interval_rps_per_instance=(measured / n, x / n))  # fmt: skip


@dataclass(frozen=True)
class ConcurrencyAtSlo:
    """The requests in flight per instance (per copy) at the SLO, with the interval the
    bracketing stages give, and the throughput there.

    `basis` "measured": a closed-loop run (--control concurrency) set the levels itself;
    "littles_law": a rate-controlled run, each stage's in-flight count derived as achieved
    throughput x mean latency (Little's law, L = lambda W), exact for a stationary stage."""

    basis: str  # measured | littles_law
    method: str  # as Capacity's: interpolated | lower_bound | model_extrapolation | none
    per_instance: float | None
    interval_per_instance: tuple[float, float] | None
    throughput_rps_per_instance: float | None
    # A streamed run's output tokens/s there (the throughput x the mean output tokens per
    # request of the passing stages); None when nothing streamed.
    output_tokens_per_s_per_instance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["interval_per_instance"] = list(self.interval_per_instance or ()) or None
        return d


def concurrency_at_slo(stages: Sequence[StageStats], capacity: Capacity) -> ConcurrencyAtSlo:
    """Where the SLO score crosses 1.0 in requests in flight, between the same bracketing
    stages as `capacity` (linear in the score, as `interpolate_crossing`)."""
    n = capacity.instances
    closed = any(s.concurrency is not None for s in stages)
    basis = "measured" if closed else "littles_law"
    by_index = {s.index: s for s in stages}
    ok = by_index.get(capacity.passing_stage) if capacity.passing_stage is not None else None
    bad = by_index.get(capacity.failing_stage) if capacity.failing_stage is not None else None
    per = capacity.rps_per_instance
    if ok is None or ok.in_flight is None or capacity.method == "none":
        return ConcurrencyAtSlo(basis, "none", None, None, None)
    if bad is None or bad.in_flight is None:
        # No failing stage: the best passing one is a lower bound (an extrapolated
        # throughput is not carried over: the latency there is unknown).
        value = ok.in_flight / n
        return ConcurrencyAtSlo(basis, "lower_bound", value, None, ok.achieved_rps / n)
    x = interpolate_crossing(ok.in_flight, ok.score, bad.in_flight, bad.score)
    lo, hi = sorted((ok.in_flight / n, bad.in_flight / n))
    return ConcurrencyAtSlo(basis, "interpolated", x / n, (lo, hi), per)
