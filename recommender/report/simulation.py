"""Text renderings of a simulated policy and of the `--safety-factor auto` sweep."""

from __future__ import annotations

from recommender.simulate import (
    ASSUMPTIONS,
    CONCURRENCY_ASSUMPTIONS,
    SafetyFactorChoice,
    Simulation,
)
from recommender.traffic import describe_minutes


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]


def format_simulation(sim: Simulation) -> str:
    """Plain text for the terminal: the policy, the traffic, and what it would have done."""
    p, t = sim.policy, sim.totals
    factor = (f"safety factor {sim.safety_factor:g} x {sim.capacity_rps:.1f} rps per instance"
              if sim.safety_factor is not None else "given")  # fmt: skip
    reason = f"over {sim.capacity_rps:.1f} rps per instance, the capacity within the SLO"
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
        f"(above the {sim.max_rps:.1f} rps per instance the run reached): "
        f"{t.requests_erroring:,.0f}",
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


def format_choice(choice: SafetyFactorChoice) -> str:
    """The sweep as a table, then the one-line choice."""
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
