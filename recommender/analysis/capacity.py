"""Highest throughput within the SLO (pure).

Method "interpolated": the stages are taken in order of offered rate (a fixed ramp plays
them so; the adaptive search jumps about); the capacity lies between the highest-rate stage
that passed below the lowest-rate stage that failed. Each stage's SLO score (worst observed /
allowed ratio, 1.0 at the boundary) is interpolated linearly against achieved throughput
to where it crosses 1.0. The bracket [last passing, first failing] is reported as the
interval the true value lies in, assuming latency grows with load.
Method "lower_bound": no stage failed; the highest passing throughput is a lower bound.
Method "none": the first stage already failed; there is no estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from recommender.analysis.stages import StageStats


@dataclass(frozen=True)
class Capacity:
    method: str  # "interpolated" | "lower_bound" | "none"
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

    s0 <= 1 < s1. An infinite s1 (a stage with no successes) puts the crossing at x0.
    """
    if x1 <= x0 or math.isinf(s1):
        return x0
    x = x0 + (1.0 - s0) * (x1 - x0) / (s1 - s0)
    return min(max(x, x0), x1)


def capacity_at_slo(stages: Sequence[StageStats], instances: int) -> Capacity:
    stages = sorted(stages, key=lambda s: s.offered_rps)  # stable: replays keep their order
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
    hi = max(bad.achieved_rps, ok.achieved_rps)
    return Capacity(
        "interpolated",
        instances,
        rps,
        rps / instances,
        (ok.achieved_rps / instances, hi / instances),
        ok.index,
        bad.index,
    )
