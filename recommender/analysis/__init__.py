"""Pure analysis of a run: stage table -> capacity at the SLO -> recommendation -> checks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

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
from recommender.analysis.stages import StageStats, stage_stats
from recommender.plan import Slo
from recommender.runs import RunData

__all__ = ["Analysis", "analyze_run"]

MIN_R2 = 0.9  # a fit worse than this is not trusted beyond the data
MAX_EXTRAPOLATION = 1.5  # never claim more than this times the highest measured throughput


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "run": self.run,
            "slo": self.slo.to_dict(),
            "latency_basis": "intended send time (coordinated-omission corrected)",
            "stages": [
                {**s.to_dict(), "server": self.server.get(s.index)} for s in self.stages
            ],
            "capacity": self.capacity.to_dict(),
            "fits": [f.to_dict() for f in self.fits],
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def analyze_run(
    run: RunData, slo: Slo | None = None, safety_factor: float = DEFAULT_SAFETY_FACTOR
) -> Analysis:
    """Analyse a run directory's data; `slo` overrides the one the run was made with."""
    check_safety_factor(safety_factor)
    slo = slo or run.slo
    plan = run.plan
    status = str(run.meta.get("status", "complete"))
    stages = stage_stats(run.seconds, plan, slo, partial_last=status != "complete")
    capacity = capacity_at_slo(stages, run.instances)
    fits = [f for t in slo.terms if (f := fit_latency(stages, t.stat, t.limit_ms)) is not None]
    extra_warnings: list[Warning] = []
    if capacity.method == "interpolated":
        capacity = with_confidence(capacity, run, slo, stages)
    elif capacity.method == "lower_bound":
        capacity, extra_warnings = extrapolate(capacity, fits, stages)
    rec = recommend(capacity.rps_per_instance, safety_factor) if capacity.rps_per_instance else None
    warnings = check(stages, capacity, slo, status, len(plan.stages)) + extra_warnings
    server, server_warnings = server_view(run, stages)
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
    return Analysis(slo, stages, capacity, rec, warnings, summary, server, fits)


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
    capacity: Capacity, run: RunData, slo: Slo, stages: list[StageStats]
) -> Capacity:
    """Attach the 95% interval: the block bootstrap's, widened to the bracketing stages
    (the bootstrap sees sampling noise; the true crossing can lie anywhere between the
    two stages, which is the resolution of the test)."""
    boot = capacity_interval(run.seconds, run.plan, slo, stages, capacity.instances)
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
    crossings = [f.x_at_limit for f in fits if f.x_at_limit is not None and f.r2 >= MIN_R2]
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

