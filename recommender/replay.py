"""The `simulate` command's library side, and `analyze --safety-factor auto`'s: read the run
directory, replay the traffic through the policy (recommender.simulate), write the result.

    <run dir>/simulation.json   the simulated policy: totals, scaling events, the per-minute
                                table by column, and the safety-factor sweep when `auto`
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from recommender import runs
from recommender.analysis import Analysis, analyze_run
from recommender.analysis.serverless import POLICY_METRIC
from recommender.calibration import Calibration, calibrated
from recommender.errors import ConfigError
from recommender.pipeline import ReportResult, analyze_dir, write_reports
from recommender.plan import Slo
from recommender.simulate import (
    CONCURRENCY_ASSUMPTIONS,
    ConcurrencyCurve,
    Policy,
    SafetyFactorChoice,
    Simulation,
    StagedLatencyModel,
    choose_safety_factor,
    concurrency_curve,
    model_from_analysis,
    simulate,
    simulate_concurrency,
    simulate_factor,
)
from recommender.simulate_async import (
    BacklogPolicy,
    choose_backlog_factor,
    endpoint_from_analysis,
    for_factor,
    simulate_backlog,
)
from recommender.simulate_serverless import ASSUMPTIONS as SERVERLESS_ASSUMPTIONS
from recommender.simulate_serverless import (
    SWEEP_TARGETS,
    choose_target,
    policy_for,
    simulate_provisioned,
)
from recommender.simulate_serverless import endpoint_from_analysis as serverless_endpoint
from recommender.sizing import lookup_price
from recommender.traffic import TrafficSeries, TrafficSpec


@dataclass(frozen=True)
class ReplayResult:
    simulation: Simulation
    choice: SafetyFactorChoice | None  # the sweep, when the safety factor was `auto`
    path: Path
    budget_met: bool  # violating minutes within --violation-budget
    calibration: Calibration | None = None  # the run's, when it set the provisioning time


def _written(
    run_dir: Path,
    sim: Simulation,
    data: dict[str, Any],
    choice: SafetyFactorChoice | None,
    violation_budget: float,
    calibration: Calibration | None = None,
) -> ReplayResult:
    """Write `data` (the simulation's dict, with what each kind adds) as the run's
    simulation.json, beside the run directory and the safety-factor sweep when there was one."""
    data["run_dir"] = str(run_dir)
    if choice is not None:
        data["safety_factor_choice"] = choice.to_dict()
    path = run_dir / runs.SIMULATION_FILE
    runs.write_json(path, data)
    budget_met = sim.totals.violating_minutes <= violation_budget
    return ReplayResult(sim, choice, path, budget_met, calibration)


def _endpoint(
    run_dir: Path, slo: Slo | None, instance_price: float | None
) -> tuple[StagedLatencyModel, float | None]:
    """The run's latency model and the instance price (given, else the built-in table's)."""
    run = runs.load_run(run_dir)
    if (run.meta.get("target") or {}).get("serverless"):
        # simulate_run replays provisioned concurrency; what else asks for the instance
        # model (verify's prediction) has no instances to replay here.
        raise ConfigError(f"{run_dir} measured a serverless variant, whose scaled capacity "
                          "is provisioned concurrency, not instances",
                          f"use: recommender simulate {run_dir} --pattern ... "
                          "--peak-rps R")  # fmt: skip
    model = model_from_analysis(analyze_run(run, slo))
    price = lookup_price((run.meta.get("target") or {}).get("instance_type"), instance_price)
    return model, price.usd_per_hour if price else None


def simulate_run(
    run_dir: Path,
    traffic: TrafficSeries,
    policy: Policy,
    *,
    safety_factor: float | None,
    slo: Slo | None = None,
    instance_price: float | None = None,
    violation_budget: int = 0,
    metric: str = "invocations",
    calibrate: bool = False,
) -> ReplayResult:
    """Simulate the run's endpoint under a policy and write simulation.json into the run.

    `metric` "concurrency": the policy tracks requests in flight per instance (copy) on
    10-second data (`simulate_concurrency`); its target is the given one, or the run's
    concurrency at the SLO x `safety_factor`.

    `calibrate`: take the provisioning time from the run's calibration.json (`verify`'s)
    when there is one (the caller passes it when --provision-minutes was not given).

    `safety_factor` None means `auto`: sweep, keep the chosen factor's simulation (or, when
    none keeps within the budget, the one with the fewest violating minutes).
    A policy with a target value simulates that exact target instead (e.g. the policy in
    place today), and `safety_factor` is not used.
    """
    given = policy.check().target()
    if violation_budget < 0:
        raise ConfigError(f"--violation-budget must be >= 0 minutes (got {violation_budget})")
    if given is not None and safety_factor is None:
        raise ConfigError("give --target-value or --safety-factor auto, not both")
    cal = None
    if calibrate:
        policy, cal = calibrated(run_dir, policy)
    if _is_serverless(run_dir):
        return _simulate_serverless(run_dir, traffic, policy, safety_factor, slo,
                                    violation_budget, metric)  # fmt: skip
    if _is_async(run_dir):
        return _simulate_async(run_dir, traffic, policy, safety_factor, slo, instance_price,
                               violation_budget)  # fmt: skip
    if isinstance(policy, BacklogPolicy) and policy.scale_from_zero:
        raise ConfigError("--scale-from-zero is for asynchronous endpoints",
                          "drop it: this run measured a real-time endpoint")  # fmt: skip
    if metric == "concurrency":
        return _simulate_concurrency(run_dir, traffic, policy, safety_factor, slo,
                                     instance_price, violation_budget)  # fmt: skip
    if metric != "invocations":
        raise ConfigError(f"unknown --metric {metric!r}", "use invocations or concurrency")
    model, price = _endpoint(run_dir, slo, instance_price)
    choice = None
    if given is not None:
        sim = simulate(traffic, model, policy.for_target(given, traffic), instance_price=price)
    elif safety_factor is None:
        choice = choose_safety_factor(traffic, model, policy, violation_budget=violation_budget,
                                      instance_price=price)  # fmt: skip
        best = choice.chosen or min(choice.rows, key=lambda r: r.violating_minutes)
        sim = simulate_factor(traffic, model, policy, best.safety_factor, price)
    else:
        sim = simulate_factor(traffic, model, policy, safety_factor, price)
    data = sim.to_dict()
    data["endpoint"]["model"] = model.to_dict()
    data["calibration"] = cal.to_dict() if cal else None
    return _written(run_dir, sim, data, choice, violation_budget, cal)


def simulate_policy(run_dir: Path, traffic: TrafficSeries, policy: Policy, *,
                    slo: Slo | None = None, initial_instances: int | None = None,
                    minute_seconds: float = 60.0) -> Simulation:  # fmt: skip
    """`simulate` of one concrete policy (target, Min/MaxCapacity given) on the run's
    endpoint, starting from `initial_instances`, a traffic minute lasting `minute_seconds`
    (a compressed replay's); nothing written (verify's prediction)."""
    model, price = _endpoint(run_dir, slo, None)
    return simulate(traffic, model, policy, instance_price=price,
                    initial_instances=initial_instances,
                    minute_seconds=minute_seconds)  # fmt: skip


def _is_async(run_dir: Path) -> bool:
    return bool((runs.load_run(run_dir).meta.get("target") or {}).get("kind") == "async")


def _is_serverless(run_dir: Path) -> bool:
    return bool((runs.load_run(run_dir).meta.get("target") or {}).get("serverless"))


def _simulate_serverless(run_dir: Path, traffic: TrafficSeries, policy: Policy,
                         safety_factor: float | None, slo: Slo | None, violation_budget: int,
                         metric: str) -> ReplayResult:  # fmt: skip
    """Provisioned concurrency under SageMakerVariantProvisionedConcurrencyUtilization
    (recommender.simulate_serverless). The target is given, or swept (`auto`), or the
    run's sizing for the traffic's peak; a numeric safety factor has no part in it."""
    if metric != "invocations":
        raise ConfigError("--metric is for instance-backed variants",
                          "drop it: a serverless variant tracks provisioned-concurrency "
                          "utilization")  # fmt: skip
    if isinstance(policy, BacklogPolicy) and policy.scale_from_zero:
        raise ConfigError("--scale-from-zero is for asynchronous endpoints",
                          "drop it: this run measured a serverless variant")  # fmt: skip
    analysis = analyze_run(runs.load_run(run_dir), slo)
    endpoint = serverless_endpoint(analysis)
    choice = None
    if policy.target() is None and safety_factor is None:
        policies = {t: policy_for(analysis, policy, traffic, t) for t in SWEEP_TARGETS}
        choice = choose_target(traffic, endpoint, policies, violation_budget)
        # None within budget: the fewest violating minutes, the highest target of those.
        best = choice.chosen or min(choice.rows,
                                    key=lambda r: (r.violating_minutes, -r.target_value))
        sim = simulate_provisioned(traffic, endpoint, policies[best.target_value],
                                   safety_factor=best.target_value)  # fmt: skip
    else:
        sim = simulate_provisioned(traffic, endpoint, policy_for(analysis, policy, traffic))
    data = sim.to_dict()
    data["endpoint"] = {**data["endpoint"], "serverless": endpoint.to_dict()}
    data["policy"]["metric"] = POLICY_METRIC
    data["assumptions"] = [*data["assumptions"], SERVERLESS_ASSUMPTIONS]
    return _written(run_dir, sim, data, choice, violation_budget)


def _backlog_policy(policy: Policy) -> BacklogPolicy:
    if isinstance(policy, BacklogPolicy):
        return policy
    return BacklogPolicy(**{f.name: getattr(policy, f.name) for f in fields(Policy)})


def _simulate_async(run_dir: Path, traffic: TrafficSeries, policy: Policy,
                    safety_factor: float | None, slo: Slo | None, instance_price: float | None,
                    violation_budget: int) -> ReplayResult:  # fmt: skip
    """The backlog policy of an asynchronous endpoint (recommender.simulate_async)."""
    run = runs.load_run(run_dir)
    endpoint = endpoint_from_analysis(analyze_run(run, slo))
    price = lookup_price((run.meta.get("target") or {}).get("instance_type"), instance_price)
    usd = price.usd_per_hour if price else None
    bp = _backlog_policy(policy)
    given = bp.target()
    choice = None
    if given is not None:
        sized = for_factor(bp, endpoint, traffic, 1.0)
        sim = simulate_backlog(traffic, endpoint, replace(sized, target_value=given),
                               instance_price=usd)  # fmt: skip
    elif safety_factor is None:
        choice = choose_backlog_factor(traffic, endpoint, bp, violation_budget=violation_budget,
                                       instance_price=usd)  # fmt: skip
        best = choice.chosen or min(choice.rows, key=lambda r: r.violating_minutes)
        sim = simulate_backlog(traffic, endpoint, for_factor(bp, endpoint, traffic,
                               best.safety_factor), safety_factor=best.safety_factor,
                               instance_price=usd)  # fmt: skip
    else:
        sim = simulate_backlog(traffic, endpoint, for_factor(bp, endpoint, traffic,
                               safety_factor), safety_factor=safety_factor,
                               instance_price=usd)  # fmt: skip
    data = sim.to_dict()
    data["endpoint"]["backlog_model"] = endpoint.to_dict()
    data["policy"]["metric"] = "ApproximateBacklogSizePerInstance"
    data["policy"]["scale_from_zero"] = bp.scale_from_zero
    return _written(run_dir, sim, data, choice, violation_budget)


def _simulate_concurrency(
    run_dir: Path, traffic: TrafficSeries, policy: Policy, safety_factor: float | None,
    slo: Slo | None, instance_price: float | None, violation_budget: int,
) -> ReplayResult:  # fmt: skip
    run = runs.load_run(run_dir)
    analysis = analyze_run(run, slo)
    model = model_from_analysis(analysis)
    curve: ConcurrencyCurve = concurrency_curve(analysis)
    price = lookup_price((run.meta.get("target") or {}).get("instance_type"), instance_price)
    target = policy.target()
    if target is None:
        if safety_factor is None:
            raise ConfigError("--safety-factor auto sweeps invocation targets",
                              "give a number with --metric concurrency")  # fmt: skip
        at_slo = analysis.concurrency.per_instance if analysis.concurrency else None
        if at_slo is None:
            raise ConfigError("the run tells no concurrency at the SLO", "pass --target-value")
        target = at_slo * safety_factor
    # Bounds as the invocations policy sizes them, from the throughput at that target.
    sized = policy.for_target(curve_rps_target(curve, target), traffic)
    sim = simulate_concurrency(traffic, model, curve, replace(sized, target_value=target),
                               safety_factor=safety_factor if policy.target() is None else None,
                               instance_price=price.usd_per_hour if price else None)  # fmt: skip
    data = sim.to_dict()
    data["endpoint"]["model"] = model.to_dict()
    data["endpoint"]["concurrency"] = curve.to_dict()
    data["assumptions"] = [*data["assumptions"], CONCURRENCY_ASSUMPTIONS]
    return _written(run_dir, sim, data, None, violation_budget)


def curve_rps_target(curve: ConcurrencyCurve, in_flight: float) -> float:
    """Invocations per instance per minute at which `curve` holds `in_flight` requests: the
    equivalent invocations target, to size Min/MaxCapacity the way the report does."""
    xs = [float(x) for x in curve.rps]
    ys = [float(y) for y in curve.in_flight]
    if in_flight >= ys[-1]:
        return xs[-1] * in_flight / ys[-1] * 60.0 if ys[-1] > 0 else xs[-1] * 60.0
    return float(np.interp(in_flight, ys, xs)) * 60.0


def choose_for_run(
    run_dir: Path,
    traffic: TrafficSeries,
    policy: Policy,
    *,
    slo: Slo | None = None,
    instance_price: float | None = None,
    violation_budget: int = 0,
) -> SafetyFactorChoice:
    """The `--safety-factor auto` sweep on a run's endpoint (nothing written)."""
    policy.check()
    if _is_serverless(run_dir):
        # analyze's safety factor scales an instance count; a serverless sizing has none.
        raise ConfigError("analyze --safety-factor auto picks a safety factor for instances; "
                          "a serverless variant's sizing has none (it is Erlang's, for the "
                          "peak)", f"sweep the utilization target with: recommender simulate "
                          f"{run_dir} --safety-factor auto --pattern ... --peak-rps R")  # fmt: skip
    model, price = _endpoint(run_dir, slo, instance_price)
    return choose_safety_factor(traffic, model, policy, violation_budget=violation_budget,
                                instance_price=price)  # fmt: skip


def analyze(
    run_dir: Path,
    *,
    slo: Slo | None,
    safety_factor: float | None,
    traffic: TrafficSpec,
    policy: Policy,
    violation_budget: int = 0,
    slo_source: str = "client",
    on_choice: Callable[[SafetyFactorChoice], None] = lambda _: None,
    calibrate: bool = False,
    on_note: Callable[[str], None] = lambda _: None,
) -> Analysis:
    """`recommender analyze`: with a safety factor, or with None ("auto") the one the
    simulated traffic allows (`on_choice` sees the sweep before the analysis, which fails
    when no factor kept within the budget). Writes analysis.json and the reports."""
    # Every flag is checked, also those only `auto` uses: a bad value is never just unused.
    traffic.check()
    policy.check()
    if violation_budget < 0:
        raise ConfigError(f"--violation-budget must be >= 0 minutes (got {violation_budget})")
    if safety_factor is not None:
        if traffic.given:
            raise ConfigError(
                "--traffic and --pattern are for --safety-factor auto",
                "add --safety-factor auto, or use `recommender simulate`",
            )
        return analyze_dir(run_dir, slo, safety_factor, slo_source)
    if not traffic.given:
        raise ConfigError("--safety-factor auto needs traffic to simulate",
                          "pass --traffic FILE or --pattern diurnal|spike|step "
                          "with --peak-rps")  # fmt: skip
    policy.check()
    if calibrate:
        policy, cal = calibrated(run_dir, policy)
        if cal is not None:
            on_note(f"note: {cal.describe()}")
    choice = choose_for_run(run_dir, traffic.load(), policy, slo=slo,
                            violation_budget=violation_budget)  # fmt: skip
    on_choice(choice)
    return analyze_with_choice(run_dir, slo, choice).analysis


def analyze_with_choice(
    run_dir: Path, slo: Slo | None, choice: SafetyFactorChoice
) -> ReportResult:
    """`analyze` with the chosen safety factor; the sweep goes into analysis.json under
    `safety_factor_choice`. Raises InsufficientDataError when nothing kept within budget."""
    return write_reports(run_dir, slo, choice.safety_factor,
                         extra={"safety_factor_choice": choice.to_dict()})  # fmt: skip
