"""What limits trust in a result, each with what to do about it (pyperf format_checks style)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from recommender.analysis.capacity import Capacity
from recommender.analysis.stages import StageStats
from recommender.plan import Slo

MIN_STAGES = 3
WIDE_BRACKET = 0.20  # capacity bracket wider than this share of the estimate
HOT_CPU = 90.0
MIN_TAIL_SAMPLES = 10  # requests beyond the SLO percentile needed to trust it


@dataclass(frozen=True)
class Warning:
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(
    stages: Sequence[StageStats], capacity: Capacity, slo: Slo, status: str, planned: int
) -> list[Warning]:
    out: list[Warning] = []

    def add(code: str, message: str) -> None:
        out.append(Warning(code, message))

    if status != "complete":
        add(
            "incomplete_run",
            f"The run is {status}: {len(stages)} of {planned} stages were measured; the "
            "estimate uses those. Re-run the full plan for a complete result.",
        )
    if not stages:
        add("no_data", "No stage has measured seconds. Check the endpoint and locust.log.")
        return out
    if capacity.method == "none":
        s = stages[0]
        add(
            "first_stage_failed",
            f"The first stage ({s.offered_rps:g} rps offered) already failed the SLO "
            f"({slo}). Lower --start-rps or relax --slo.",
        )
    elif capacity.method == "lower_bound":
        add(
            "no_failing_stage",
            f"No stage failed the SLO, so {capacity.rps:.1f} rps is only a lower bound on "
            "capacity. Raise --max-rps above it to find the limit.",
        )
    elif capacity.interval_rps_per_instance and capacity.rps_per_instance:
        lo, hi = capacity.interval_rps_per_instance
        if (hi - lo) / capacity.rps_per_instance > WIDE_BRACKET:
            add(
                "wide_bracket",
                f"Capacity lies between {lo:.1f} and {hi:.1f} rps per instance "
                f"({(hi - lo) / capacity.rps_per_instance:.0%} wide). Re-run with stages "
                f"between them (--start-rps {lo * capacity.instances:.0f} --max-rps "
                f"{hi * capacity.instances:.0f}) for a tighter estimate.",
            )
    if len(stages) < MIN_STAGES:
        add(
            "too_few_stages",
            f"Only {len(stages)} stage(s) measured. Use at least {MIN_STAGES} (--stages).",
        )
    for s in stages:
        if s.generator_limited:
            add(
                "generator_limited",
                f"Stage {s.index + 1}: achieved {s.achieved_rps:.1f} of {s.offered_rps:g} rps "
                "offered while within the SLO: the load generator could not drive the rate, "
                "so the stage says nothing about the endpoint. Add --workers (or raise "
                "--users).",
            )
        if s.cpu_percent_max is not None and s.cpu_percent_max > HOT_CPU:
            add(
                "generator_cpu",
                f"Stage {s.index + 1}: the load generator used {s.cpu_percent_max:.0f}% CPU; "
                "its timings may be inflated. Lower the rate per generator process.",
            )
        latency_ok = all(
            v is not None and v <= t.limit_ms
            for t, v in zip(slo.terms, s.slo_values_ms.values(), strict=True)
        )
        if not s.passed and latency_ok and s.error_rate > slo.max_error_rate:
            kinds = ", ".join(f"{k} x{n}" for k, n in s.errors_by_kind.items())
            add(
                "errors_before_knee",
                f"Stage {s.index + 1} failed on errors ({s.error_rate:.1%}: {kinds}) while its "
                "latency was within the SLO: the endpoint errors under load before it slows "
                "down. See Invocation5XXErrors and the model's logs.",
            )
        if s.passed and s.error_rate > 0:
            kinds = ", ".join(f"{k} x{n}" for k, n in s.errors_by_kind.items())
            add(
                "errors_within_budget",
                f"Stage {s.index + 1} passed with errors ({kinds}); check the endpoint logs.",
            )
        for term in slo.terms:
            q = term.quantile
            if q is not None and q < 1 and s.successes * (1 - q) < MIN_TAIL_SAMPLES:
                add(
                    "thin_tail",
                    f"Stage {s.index + 1}: {term.stat} rests on fewer than "
                    f"{MIN_TAIL_SAMPLES} requests ({s.successes} in all). Lengthen "
                    "--stage-seconds.",
                )
                break
    if capacity.failing_stage is not None:
        failed = next(s for s in stages if s.index == capacity.failing_stage)
        higher = [s for s in stages if s.offered_rps > failed.offered_rps and s.passed]
        if higher:
            add(
                "non_monotonic",
                f"Stage {higher[0].index + 1} passed at {higher[0].offered_rps:g} rps although "
                f"stage {failed.index + 1} failed at {failed.offered_rps:g} rps: the endpoint "
                "is noisy at this load. Lengthen the stages.",
            )
    return out
