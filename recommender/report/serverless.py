"""A serverless variant's results as text: capacity per unit of concurrency, cold starts,
throttling, and the provisioned concurrency for a peak (recommender.analysis.serverless)."""

from __future__ import annotations

import shlex

from recommender.analysis.serverless import POLICY_METRIC, ServerlessAnalysis, ServerlessSizing
from recommender.plan import Slo


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def verdict_lines(s: ServerlessAnalysis, slo: Slo) -> list[str]:
    """The verdict of a serverless run (in place of the per-instance target's)."""
    memory = f", {s.memory_mb} MB" if s.memory_mb else ""
    out = [f"Serverless variant: MaxConcurrency {s.max_concurrency}, ProvisionedConcurrency "
           f"{s.provisioned_concurrency}{memory}"]  # fmt: skip
    if s.rps_per_concurrency is None:
        out.append(f"  no throughput per execution within {slo}: no stage passed")
    else:
        total = s.rps_per_concurrency * s.max_concurrency
        out.append(f"  throughput per concurrent execution: {s.rps_per_concurrency:.1f} rps within "
                   f"{slo} ({s.capacity_method}; x MaxConcurrency {s.max_concurrency} = "
                   f"{total:.1f} rps, above which requests are throttled)")  # fmt: skip
    if s.littles_rps_per_concurrency is not None:
        out.append(f"  Little's law check: 1000 / warm latency {s.warm_latency_ms:.1f} ms = "
                   f"{s.littles_rps_per_concurrency:.1f} rps per execution")  # fmt: skip
    if s.cold is not None:
        c = s.cold
        out.append(f"  cold starts (client): {c.cold_share:.2%} of successes in the cold mode, "
                   f"p50 {c.cold_p50_ms:.0f} ms against {c.warm_p50_ms:.1f} ms warm (split at "
                   f"{c.threshold_ms:.0f} ms)")  # fmt: skip
    if s.model_setup_count is not None:
        out.append(f"  ModelSetupTime (CloudWatch): {s.model_setup_count} cold start(s), mean "
                   f"{_ms(s.model_setup_ms)}")  # fmt: skip
    rate = s.throttled / s.requests if s.requests else 0.0
    first = next((x.index + 1 for x in s.stages if x.throttled), None)
    out.append(f"  throttled (ThrottlingException): {s.throttled} of {s.requests} requests "
               f"({rate:.2%})" + (f", from stage {first}" if first else ""))  # fmt: skip
    if s.sizing is not None:
        out += sizing_lines(s.sizing)
    else:
        out.append("  pass --peak-rps (report or analyze) to size ProvisionedConcurrency")
    return out


def sizing_lines(z: ServerlessSizing) -> list[str]:
    out = [f"Recommended ProvisionedConcurrency: {z.provisioned_concurrency} for a peak of "
           f"{z.peak_rps:g} rps ({z.spillover_at_peak:.2%} spill over to on-demand executions)",
           f"  {POLICY_METRIC} target: {z.target_utilization:g}; MinCapacity {z.min_capacity}, "
           f"MaxCapacity {z.max_capacity}; MaxConcurrency needed {z.max_concurrency_needed} "
           f"(has {z.max_concurrency})"]  # fmt: skip
    out += [f"  {line}" for line in z.derivation]
    if z.on_demand_miss_share is None:
        out.append("  on demand: cold requests would stay within the SLO")
    out += [f"  warning: {w}" for w in z.warnings]
    return out


def stage_rows(s: ServerlessAnalysis) -> list[list[str]]:
    """Per stage, whole (warm-up included): requests, throttled, cold (client, CloudWatch)."""
    rows = [["stage", "offered rps", "requests", "throttled", "cold (client)",
             "ModelSetupTime count", "ModelSetupTime mean"]]  # fmt: skip
    for x in s.stages:
        rows.append([str(x.index + 1), f"{x.offered_rps:g}", str(x.requests),
                     f"{x.throttled} ({x.throttle_rate:.1%})",
                     "-" if x.cold is None else f"{x.cold} ({x.cold_share or 0:.1%})",
                     "-" if x.model_setup_count is None else str(x.model_setup_count),
                     _ms(x.model_setup_ms)])  # fmt: skip
    return rows


def apply_command(run_dir: str, z: ServerlessSizing | None) -> str:
    """The `recommender apply` that puts the policy the run recommends."""
    if z is None:
        return f"recommender report {shlex.quote(run_dir)} --peak-rps R   # then apply"
    return f"recommender apply {shlex.quote(run_dir)} --kind serverless --dry-run"
