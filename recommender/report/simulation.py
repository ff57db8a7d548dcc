"""Text renderings of a simulated policy and of the `--safety-factor auto` sweep."""

from __future__ import annotations

import numpy as np

from recommender.simulate import (
    ASSUMPTIONS,
    CONCURRENCY_ASSUMPTIONS,
    FloatArray,
    SafetyFactorChoice,
    Simulation,
)
from recommender.simulate_serverless import ASSUMPTIONS as SERVERLESS_ASSUMPTIONS
from recommender.traffic import describe_minutes

MAX_ROWS = 40  # per-minute rows shown; simulation.json has every minute


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]


def format_simulation(sim: Simulation) -> str:
    """Plain text for the terminal: the policy, the traffic, and what it would have done."""
    if sim.cold_starts is not None and sim.utilization is not None:
        return format_provisioned(sim, sim.cold_starts, sim.utilization)
    p, t = sim.policy, sim.totals
    factor = (f"safety factor {sim.safety_factor:g} x {sim.capacity_rps:.1f} rps per instance"
              if sim.safety_factor is not None else "given")  # fmt: skip
    reason = f"over {sim.capacity_rps:.1f} rps per instance, the capacity within the SLO"
    erroring = f"above the {sim.max_rps:.1f} rps per instance the run reached"
    if sim.backlog is not None:  # the queue (recommender.simulate.FluidQueue)
        reason += ", or a queue left waiting longer than the SLO's limit"
        erroring = (f"queued over 60 s above the {sim.max_rps:.1f} rps per instance the run "
                    "reached")  # fmt: skip
    share = t.requests_outside_slo / t.requests if t.requests else 0.0
    target = f"  target {p.target_value:.0f} invocations per instance per minute ({factor})"
    out_after = f"{p.scale_out_datapoints} minute(s)"
    if sim.metric == "concurrency":
        how = ("given" if sim.safety_factor is None
               else f"safety factor {sim.safety_factor:g} x the concurrency at the SLO")
        target = (f"  target {p.target_value:.2f} requests in flight per instance or copy "
                  f"(10-second data; {how})")  # fmt: skip
        out_after = f"{p.scale_out_datapoints} x {sim.step_seconds} s"
    if sim.metric == "backlog":  # an asynchronous endpoint (recommender.simulate_async)
        how = ("given" if sim.safety_factor is None
               else f"c + mu x W x safety factor {sim.safety_factor:g}")
        target = (f"  target {p.target_value:.1f} queued requests per instance "
                  f"(ApproximateBacklogSizePerInstance; {how})")  # fmt: skip
        reason = "a request arriving then would complete after the SLO's limit"
    lines = [
        f"Simulated {describe_minutes(t.minutes)} of traffic ({sim.traffic.source}) "
        "through target tracking:",
        target,
        f"  MinCapacity {p.min_capacity}, MaxCapacity {p.max_capacity}; scale out after "
        f"{out_after} above target, in after {p.scale_in_datapoints} minute(s) "
        f"below {p.scale_in_ratio:.0%} of it"
        + (" (scale-in disabled)" if p.disable_scale_in else ""),
        f"  cooldowns {p.scale_out_cooldown} s out / {p.scale_in_cooldown} s in; new "
        f"instances serve {p.provision_minutes} min after a scale-out",
        "",
        f"SLO-violating minutes: {t.violating_minutes} of {t.minutes} ({reason})",
        f"Requests outside the SLO: {t.requests_outside_slo:,.0f} ({share:.2%}); erroring "
        f"({erroring}): {t.requests_erroring:,.0f}",
    ]
    cost = ""
    if t.cost_usd is not None and sim.instance_price is not None:
        cost = f" (${t.cost_usd:,.2f} at ${sim.instance_price:g}/h)"
    lines.append(f"Instance-hours: {t.instance_hours:,.1f}{cost}")
    lines.append(
        f"Scaling: {t.scale_out_events} scale-out(s), {t.scale_in_events} scale-in(s); "
        f"{t.in_service_min} to {t.in_service_max} instances in service"
    )
    if t.capped_minutes:
        lines.append(
            f"MaxCapacity {p.max_capacity} held the fleet back in {t.capped_minutes} minute(s)"
        )
    first = next((int(i) for i in sim.violating.nonzero()[0][:1]), None)
    if first is not None:
        lines.append(
            f"First violation at minute {first}: {sim.requests[first] / 60:.0f} rps on "
            f"{sim.in_service[first]} instance(s) in service ({sim.desired[first]} desired)"
        )
    if sim.traffic.missing_minutes:
        lines.append(f"note: {sim.traffic.missing_minutes} minute(s) had no row in the file "
                     "and count as 0 requests")  # fmt: skip
    lines.append(f"note: {ASSUMPTIONS}")
    if sim.metric == "concurrency":
        lines.append(f"note: {CONCURRENCY_ASSUMPTIONS}")
    return "\n".join(lines) + "\n"


def format_choice(choice: SafetyFactorChoice, sim: Simulation | None = None) -> str:
    """The sweep as a table, then the one-line choice (of the utilization target itself
    when `sim` is a serverless variant's replay)."""
    if sim is not None and sim.metric == "provisioned_concurrency":
        return format_target_choice(choice)
    rows = [["safety factor", "target/min", "Min-Max", "violating min", "outside SLO",
             "instance-h", "out/in"]]  # fmt: skip
    for r in choice.rows:
        mark = " *" if choice.chosen is not None and r == choice.chosen else "  "
        rows.append([
            f"{r.safety_factor:.2f}{mark}",
            f"{r.target_value:.0f}",
            f"{r.min_capacity}-{r.max_capacity}",
            str(r.violating_minutes),
            f"{r.requests_outside_slo:,.0f}",
            f"{r.instance_hours:,.1f}",
            f"{r.scale_out_events}/{r.scale_in_events}",
        ])  # fmt: skip
    return "\n".join(_table(rows) + ["", choice.explanation]) + "\n"


def format_target_choice(choice: SafetyFactorChoice) -> str:
    """A serverless run's `--safety-factor auto`: the utilization targets swept."""
    rows = [["utilization target", "Min-Max", "violating min", "outside SLO", "throttled",
             "PC-hours", "out/in"]]  # fmt: skip
    for r in choice.rows:
        mark = " *" if choice.chosen is not None and r == choice.chosen else "  "
        rows.append([f"{r.target_value:.2f}{mark}", f"{r.min_capacity}-{r.max_capacity}",
                     str(r.violating_minutes), f"{r.requests_outside_slo:,.0f}",
                     f"{r.requests_erroring:,.0f}", f"{r.instance_hours:,.1f}",
                     f"{r.scale_out_events}/{r.scale_in_events}"])  # fmt: skip
    return "\n".join(_table(rows) + ["", choice.explanation]) + "\n"


def _changes(sim: Simulation, cold: FloatArray) -> list[int]:
    """The minutes worth a row: the first and last, the busiest, each with a cold start,
    and each where the provisioned concurrency in service or the SLO verdict changes."""
    n = sim.traffic.minutes
    keep = {0, n - 1, int(np.argmax(sim.requests)), *np.nonzero(cold >= 0.5)[0].tolist()}
    for m in range(1, n):
        if (sim.in_service[m] != sim.in_service[m - 1]
                or sim.violating[m] != sim.violating[m - 1]):  # fmt: skip
            keep.update((m - 1, m))
    return sorted(m for m in keep if 0 <= m < n)


def format_provisioned(sim: Simulation, cold: FloatArray, utilization: FloatArray) -> str:
    """A serverless variant's replay (recommender.simulate_serverless): provisioned
    concurrency, its utilization, cold starts and throttles, and a per-minute table."""
    p, t = sim.policy, sim.totals
    how = ("chosen by --safety-factor auto" if sim.safety_factor is not None
           else "--target-value, else the run's sizing for the traffic's peak")
    req = sim.requests
    share = np.divide(cold, req, out=np.zeros_like(cold), where=req > 0)
    total_cold = float(cold.sum())
    cold_pct = total_cold / t.requests if t.requests else 0.0
    lines = [
        f"Simulated {describe_minutes(t.minutes)} of traffic ({sim.traffic.source}) through "
        "target tracking on provisioned concurrency:",
        f"  target {p.target_value:.2f} SageMakerVariantProvisionedConcurrencyUtilization "
        f"({how})",
        f"  MinCapacity {p.min_capacity}, MaxCapacity {p.max_capacity} (provisioned "
        f"concurrency); scale out after {p.scale_out_datapoints} minute(s) above target, in "
        f"after {p.scale_in_datapoints} minute(s) below {p.scale_in_ratio:.0%} of it"
        + (" (scale-in disabled)" if p.disable_scale_in else ""),
        f"  cooldowns {p.scale_out_cooldown} s out / {p.scale_in_cooldown} s in; new "
        f"provisioned concurrency serves {p.provision_minutes} min after a scale-out",
        f"  an execution holds a warm request {1000.0 / sim.capacity_rps:.0f} ms; requests "
        "beyond provisioned concurrency run on demand (cold)",
        "",
        f"SLO-violating minutes: {t.violating_minutes} of {t.minutes} (cold starts above the "
        "tail allowance of an SLO term a cold request breaks, or throttling above the error "
        "budget)",
        f"Cold starts: {total_cold:,.0f} requests ({cold_pct:.2%}); throttled beyond "
        f"MaxConcurrency: {t.requests_erroring:,.0f}",
        f"Provisioned-concurrency-hours: {t.instance_hours:,.1f}",
        f"Scaling: {t.scale_out_events} scale-out(s), {t.scale_in_events} scale-in(s); "
        f"{t.in_service_min} to {t.in_service_max} provisioned concurrency in service",
    ]
    if t.capped_minutes:
        lines.append(f"MaxCapacity {p.max_capacity} held provisioned concurrency back in "
                     f"{t.capped_minutes} minute(s)")  # fmt: skip
    rows = [["minute", "rps", "PC", "desired", "utilization", "cold starts", "SLO"]]
    shown = _changes(sim, cold)
    for m in shown[:MAX_ROWS]:
        rows.append([str(m), f"{req[m] / 60:.1f}", str(sim.in_service[m]), str(sim.desired[m]),
                     f"{utilization[m]:.2f}", f"{cold[m]:,.0f} ({share[m]:.1%})",
                     "violated" if sim.violating[m] else "ok"])  # fmt: skip
    lines += ["", "Per minute (cold starts, and where provisioned concurrency or the verdict "
              "changes; every minute in simulation.json):", *_table(rows)]  # fmt: skip
    if len(shown) > MAX_ROWS:
        lines.append(f"... {len(shown) - MAX_ROWS} more row(s) in simulation.json")
    if sim.traffic.missing_minutes:
        lines.append(f"note: {sim.traffic.missing_minutes} minute(s) had no row in the file "
                     "and count as 0 requests")  # fmt: skip
    lines.append(f"note: {ASSUMPTIONS}")
    lines.append(f"note: {SERVERLESS_ASSUMPTIONS}")
    return "\n".join(lines) + "\n"
