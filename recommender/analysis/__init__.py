"""Pure analysis of a run: stage table -> capacity at the SLO -> recommendation -> checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recommender.analysis.capacity import Capacity, capacity_at_slo
from recommender.analysis.checks import Warning, check
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


@dataclass(frozen=True)
class Analysis:
    slo: Slo
    stages: list[StageStats]
    capacity: Capacity
    recommendation: Recommendation | None
    warnings: list[Warning]
    run: dict[str, Any]
    server: dict[int, dict[str, Any]] = field(default_factory=dict)  # CloudWatch, by stage

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
    rec = recommend(capacity.rps_per_instance, safety_factor) if capacity.rps_per_instance else None
    warnings = check(stages, capacity, slo, status, len(plan.stages))
    server, server_warnings = server_view(run, stages)
    warnings += server_warnings
    summary = {
        "dir": str(run.path),
        "name": run.meta.get("name"),
        "status": status,
        "target": run.meta.get("target"),
        "started_at": run.meta.get("started_at"),
        "ended_at": run.meta.get("ended_at"),
        "totals": run.meta.get("totals"),
    }
    return Analysis(slo, stages, capacity, rec, warnings, summary, server)
