"""Pure analysis of a run: stage table -> capacity at the SLO -> recommendation -> checks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from recommender.analysis.bootstrap import BLOCK_SECONDS, REPLICATES, capacity_interval
from recommender.analysis.capacity import Capacity, capacity_at_slo
from recommender.analysis.checks import Warning, check
from recommender.analysis.fit import LatencyFit, fit_latency
from recommender.analysis.recommend import (
    DEFAULT_SAFETY_FACTOR,
    Recommendation,
    check_safety_factor,
    recommend,
)
from recommender.analysis.server import server_view
from recommender.analysis.stages import StageStats, score, stage_stats
from recommender.errors import ConfigError, InsufficientDataError
from recommender.plan import Slo
from recommender.runs import RunData

__all__ = ["Analysis", "analyze_run"]

MIN_R2 = 0.9  # a fit worse than this is not trusted beyond the data
MAX_EXTRAPOLATION = 1.5  # never claim more than this times the highest measured throughput
KNEE_SHOWN = 1.25  # latency at the top of the data / the fit's flat part, to extrapolate


@dataclass(frozen=True)
class Analysis:
    slo: Slo
    stages: list[StageStats]
    capacity: Capacity
    recommendation: Recommendation | None
    warnings: list[Warning]
    run: dict[str, Any]
    server: dict[int, dict[str, Any]] = field(default_factory=dict)  # CloudWatch, by stage
    fits: list[LatencyFit] = field(default_factory=list)
    slo_source: str = "client"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "run": self.run,
            "slo": self.slo.to_dict(),
            "slo_source": self.slo_source,
            "latency_basis": (
                "intended send time (coordinated-omission corrected)"
                if self.slo_source == "client"
                else "CloudWatch ModelLatency (percentiles: the stage's worst period)"
            ),
            "stages": [
                {**s.to_dict(), "server": self.server.get(s.index)} for s in self.stages
            ],
            "capacity": self.capacity.to_dict(),
            "fits": [f.to_dict() for f in self.fits],
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def analyze_run(
    run: RunData,
    slo: Slo | None = None,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
    slo_source: str = "client",
) -> Analysis:
    """Analyse a run directory's data; `slo` overrides the one the run was made with.

    `slo_source` "server" judges the SLO's latency on the endpoint's own ModelLatency from
    CloudWatch instead of the client's latency (errors stay the client's: users see them).
    """
    check_safety_factor(safety_factor)
    slo = slo or run.slo
    plan = run.plan
    status = str(run.meta.get("status", "complete"))
    stages = stage_stats(run.seconds, plan, slo, partial_last=status != "complete")
    server, server_warnings = server_view(run, stages)
    if slo_source == "server":
        stages = judge_on_server(stages, server, slo)
    elif slo_source != "client":
        raise ConfigError(f"unknown --slo-source {slo_source!r}", "use client or server")
    capacity = capacity_at_slo(stages, run.instances)
    fits = [f for t in slo.terms if (f := fit_latency(stages, t.stat, t.limit_ms)) is not None]
    extra_warnings: list[Warning] = []
    if capacity.method == "interpolated":
        capacity = with_confidence(capacity, run, slo, stages, slo_source == "client")
    elif capacity.method == "lower_bound":
        capacity, extra_warnings = extrapolate(capacity, fits, stages)
    rec = recommend(capacity.rps_per_instance, safety_factor) if capacity.rps_per_instance else None
    warnings = check(stages, capacity, slo, status, len(plan.stages)) + extra_warnings
    warnings += server_warnings + lost_workers(run) + search_stop(run)
    summary = {
        "dir": str(run.path),
        "name": run.meta.get("name"),
        "status": status,
        "target": run.meta.get("target"),
        "started_at": run.meta.get("started_at"),
        "ended_at": run.meta.get("ended_at"),
        "totals": run.meta.get("totals"),
    }
    return Analysis(slo, stages, capacity, rec, warnings, summary, server, fits, slo_source)


def judge_on_server(
    stages: list[StageStats], server: dict[int, dict[str, Any]], slo: Slo
) -> list[StageStats]:
    """The stages re-judged on CloudWatch's ModelLatency (stages CloudWatch did not cover
    are left out). InsufficientDataError when CloudWatch lacks a statistic the SLO needs."""
    if not server:
        raise InsufficientDataError(
            "the run has no CloudWatch data joined to its stages",
            "collect it (`recommender collect RUN_DIR`) or use --slo-source client",
        )
    out = []
    for s in stages:
        view = server.get(s.index)
        if view is None:
            continue
        values: dict[str, float | None] = {}
        for term in slo.terms:
            value = (view["model_latency_ms"] if term.stat == "mean"
                     else view["model_latency_pct_ms"].get(term.stat))  # fmt: skip
            if value is None:
                raise InsufficientDataError(
                    f"CloudWatch has no {term.stat} ModelLatency for stage {s.index + 1}",
                    "use a statistic it collected (mean, p50, p90, p95, p99) or "
                    "--slo-source client",
                )
            values[term.stat] = value
        sc = score(values, s.error_rate, slo, s.successes)
        out.append(replace(s, slo_values_ms=values, score=sc, passed=sc <= 1.0))
    return out


def search_stop(run: RunData) -> list[Warning]:
    """The adaptive search stopped for a reason other than reaching its precision."""
    decisions = (run.meta.get("search") or {}).get("decisions") or []
    if not decisions or decisions[-1].get("action") != "stop":
        return []
    why = str(decisions[-1].get("why", ""))
    if "--max-duration" in why or "--max-requests" in why:
        return [Warning("search_budget", f"The search stopped before reaching its precision: "
                        f"{why}. Raise --max-duration (or --max-requests).")]  # fmt: skip
    return []


def lost_workers(run: RunData) -> list[Warning]:
    """A load-generator worker that died mid-run: its data up to then are in the run, but
    the stage it died in got less load than offered."""
    out = []
    workers = (run.meta.get("generator") or {}).get("workers") or {}
    timeline = run.plan.stage_bounds()
    for name, w in workers.items():
        lost = w.get("lost_after_second")
        if lost is None:
            continue
        stage = next((i for i, (a, b) in enumerate(timeline) if a <= lost + 1 < b), None)
        where = f"in stage {stage + 1}" if stage is not None else "after the last stage"
        out.append(Warning(
            "worker_lost",
            f"Load generator worker {name} stopped reporting after second {lost} ({where}); "
            "its requests until then are counted, but that stage and any after it were "
            "offered less than planned. Re-run, or check that worker's machine.",
        ))  # fmt: skip
    return out


def with_confidence(
    capacity: Capacity, run: RunData, slo: Slo, stages: list[StageStats], bootstrap: bool = True
) -> Capacity:
    """Attach the 95% interval: the block bootstrap's, widened to the bracketing stages
    (the bootstrap sees sampling noise; the true crossing can lie anywhere between the
    two stages, which is the resolution of the test)."""
    # The bootstrap resamples the client's histograms; judged on CloudWatch, the bracket.
    boot = (capacity_interval(run.seconds, run.plan, slo, stages, capacity.instances)
            if bootstrap else None)  # fmt: skip
    bracket = capacity.interval_rps_per_instance
    if boot is None and bracket is None:
        return capacity
    points = [v for pair in (boot, bracket) if pair for v in pair]
    method = "bracketing stages" if boot is None else (
        f"block bootstrap over seconds ({REPLICATES} replicates, {BLOCK_SECONDS} s blocks), "
        "widened to the bracketing stages")  # fmt: skip
    return replace(capacity, ci_rps_per_instance=(min(points), max(points)), ci_method=method)


def extrapolate(
    capacity: Capacity, fits: list[LatencyFit], stages: list[StageStats]
) -> tuple[Capacity, list[Warning]]:
    """With no failing stage, the fitted model may say where the SLO would break, if it fits
    well and the point is not far beyond what was measured. Always with a warning."""
    measured = max(s.successes / s.seconds for s in stages if s.seconds)
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
        return capacity, []
    x = min(crossings)
    if not measured < x <= MAX_EXTRAPOLATION * measured:
        return capacity, []
    n = capacity.instances
    warning = Warning(
        "extrapolated",
        f"No stage failed; the fitted latency model puts the SLO limit at {x:.1f} rps, "
        f"beyond the {measured:.1f} rps measured. This is an extrapolation: confirm with "
        f"--max-rps above {x:.0f}.",
    )
    return replace(capacity, method="model_extrapolation", rps=x, rps_per_instance=x / n,
                   interval_rps_per_instance=(measured / n, x / n)), [warning]  # fmt: skip

