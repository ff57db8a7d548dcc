"""Commands that read a run directory: analyze, report, compare, simulate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR, parse_safety_factor
from recommender.cli.app import app, echo, echo_err
from recommender.cli.flags import (
    NO_TRAFFIC,
    BudgetOpt,
    CooldownOpt,
    DisableScaleInOpt,
    JsonOpt,
    MaxCapOpt,
    MaxErrorRateOpt,
    MinCapOpt,
    ProvisionOpt,
    RunDirArg,
    SafetyFactorOpt,
    SloOpt,
    SloSource,
    flag_groups,
    traffic_flags,
)
from recommender.policy import COOLDOWN_SECONDS
from recommender.simulate import (
    DEFAULT_PROVISION_MINUTES,
    DEFAULT_SCALE_IN_DATAPOINTS,
    DEFAULT_SCALE_IN_RATIO,
    DEFAULT_SCALE_OUT_DATAPOINTS,
    Policy,
)
from recommender.traffic import TrafficSpec


@app.command()
@flag_groups(traffic=traffic_flags)
def analyze(
    run_dir: RunDirArg,
    slo: SloOpt = None,
    max_error_rate: MaxErrorRateOpt = None,
    safety_factor: SafetyFactorOpt = str(DEFAULT_SAFETY_FACTOR),
    traffic: TrafficSpec = NO_TRAFFIC,
    min_capacity: MinCapOpt = None,
    max_capacity: MaxCapOpt = None,
    provision_minutes: ProvisionOpt = None,
    violation_budget: BudgetOpt = 0,
    slo_source: Annotated[
        SloSource,
        typer.Option(help="Judge latency as the client saw it, or by CloudWatch ModelLatency."),
    ] = SloSource.client,
    json_output: JsonOpt = False,
) -> None:
    """Analyse a run directory: stage table, capacity per instance, target value."""
    from recommender.pipeline import slo_override
    from recommender.replay import analyze as analyze_run
    from recommender.report.render import format_summary
    from recommender.report.result import format_json, result_document
    from recommender.report.simulation import format_choice

    show = echo_err if json_output else echo  # with --json, stdout holds the result alone

    analysis = analyze_run(
        run_dir, slo=slo_override(run_dir, slo, max_error_rate),
        safety_factor=parse_safety_factor(safety_factor),
        traffic=traffic,
        policy=Policy(min_capacity=min_capacity, max_capacity=max_capacity,
                      provision_minutes=_provision(provision_minutes)),
        violation_budget=violation_budget, slo_source=slo_source.value,
        on_choice=lambda choice: show(format_choice(choice)),
        calibrate=provision_minutes is None, on_note=show,
    )  # fmt: skip
    if json_output:
        echo(format_json(result_document("analyze", analysis, run_dir,
                                         exit_code=analysis.exit_code)).rstrip())  # fmt: skip
    else:
        echo(format_summary(analysis).rstrip())
    if analysis.exit_code:
        raise typer.Exit(analysis.exit_code)


@app.command()
def report(
    run_dir: RunDirArg,
    format_: Annotated[
        list[str], typer.Option("--format", help="html, md, json (analysis.json); comma-separate.")
    ] = ["html,md,json"],  # noqa: B006 - typer reads the default, never mutates it
    peak_rps: Annotated[float | None, typer.Option(help="Expected peak requests/s.")] = None,
    min_rps: Annotated[float | None, typer.Option(help="Expected lowest requests/s.")] = None,
    instance_price: Annotated[
        float | None, typer.Option(help="USD per instance-hour (default: built-in table).")
    ] = None,
    instance_type: Annotated[
        str | None, typer.Option(help="For the price look-up (default: the run's).")
    ] = None,
    min_capacity_floor: Annotated[
        int, typer.Option(help="Lowest MinCapacity: 2 spreads over zones, 1 for dev.")
    ] = 2,
    slo: SloOpt = None,
    max_error_rate: MaxErrorRateOpt = None,
    safety_factor: Annotated[float, typer.Option(help="Share of capacity to target.")] = (
        DEFAULT_SAFETY_FACTOR
    ),
) -> None:
    """Write the sizing report (report.html, report.md, analysis.json) into a run directory."""
    from recommender.pipeline import parse_formats, slo_override, write_reports
    from recommender.sizing import Traffic

    formats = parse_formats(format_)
    traffic = Traffic(peak_rps=peak_rps, min_rps=min_rps, instance_type=instance_type,
                      instance_price=instance_price,
                      min_capacity_floor=min_capacity_floor).check()  # before anything is written
    result = write_reports(
        run_dir, slo_override(run_dir, slo, max_error_rate), safety_factor, traffic, formats
    )
    rec = result.analysis.recommendation
    if result.analysis.serverless is not None:
        from recommender.report.serverless import verdict_lines

        echo("\n".join(verdict_lines(result.analysis.serverless, result.analysis.slo)))
    elif rec is None:
        echo("No recommendation: no stage passed the SLO.")
    else:
        echo(f"Recommended target value: {rec.target_value:.0f} ({rec.metric})")
    if result.sizing is not None:
        z = result.sizing
        echo(f"Sizing: {z.instances_at_peak} instance(s) at {z.peak_rps:g} rps; "
             f"MinCapacity {z.min_capacity}, MaxCapacity {z.max_capacity}")  # fmt: skip
    elif peak_rps is not None and result.analysis.serverless is None:
        echo("No sizing: there is no target value to size with.")
    for path in result.written:
        echo(f"Wrote {path}")
    if result.analysis.exit_code:
        raise typer.Exit(result.analysis.exit_code)


@app.command()
def compare(
    base_run: Annotated[Path, typer.Argument(help="The run to compare against.")],
    new_run: Annotated[Path, typer.Argument(help="The run under test.")],
    max_regression: Annotated[
        str, typer.Option(help='Capacity drop allowed beyond the runs\' intervals: "10%" or 0.1.')
    ] = "10%",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare two runs; exit 1 if capacity per instance regressed beyond the noise."""
    import json

    from recommender.compare import compare_dirs, parse_threshold
    from recommender.report.comparison import format_comparison

    result = compare_dirs(base_run, new_run, parse_threshold(max_regression))
    if json_output:
        echo(json.dumps(result.to_dict(), indent=2))
    else:
        echo(format_comparison(result).rstrip())
    if result.regression:
        raise typer.Exit(1)


@app.command()
@flag_groups(traffic=traffic_flags)
def simulate(
    run_dir: RunDirArg,
    traffic: TrafficSpec = NO_TRAFFIC,
    min_capacity: MinCapOpt = None,
    max_capacity: MaxCapOpt = None,
    safety_factor: SafetyFactorOpt = str(DEFAULT_SAFETY_FACTOR),
    target_value: Annotated[
        float | None, typer.Option(help="Simulate this target value instead (today's policy).")
    ] = None,
    scale_out_datapoints: Annotated[int, typer.Option(help="High alarm's datapoints.")] = (
        DEFAULT_SCALE_OUT_DATAPOINTS
    ),
    scale_in_datapoints: Annotated[int, typer.Option(help="Low alarm's datapoints.")] = (
        DEFAULT_SCALE_IN_DATAPOINTS
    ),
    scale_in_ratio: Annotated[float, typer.Option(help="Low alarm at this x target.")] = (
        DEFAULT_SCALE_IN_RATIO
    ),
    scale_out_cooldown: CooldownOpt = COOLDOWN_SECONDS,
    scale_in_cooldown: CooldownOpt = COOLDOWN_SECONDS,
    provision_minutes: ProvisionOpt = None,
    disable_scale_in: DisableScaleInOpt = False,
    instance_price: Annotated[float | None, typer.Option(help="USD per instance-hour.")] = None,
    violation_budget: BudgetOpt = 0,
    slo: SloOpt = None,
    max_error_rate: MaxErrorRateOpt = None,
    scale_from_zero: Annotated[
        bool, typer.Option("--scale-from-zero", help="Async endpoints: MinCapacity 0 and the "
                           "step policy on HasBacklogWithoutCapacity.")
    ] = False,
    metric: Annotated[
        str, typer.Option(help="What the policy tracks: invocations (1-minute data) or "
                          "concurrency (requests in flight, 10-second data).")
    ] = "invocations",
) -> None:
    """Replay traffic through the target-tracking policy before applying it; exit 1 when
    SLO-violating minutes exceed --violation-budget. Writes simulation.json."""
    from recommender.pipeline import slo_override
    from recommender.replay import simulate_run
    from recommender.report.simulation import format_choice, format_simulation
    from recommender.simulate_async import BacklogPolicy

    factor = parse_safety_factor(safety_factor)
    policy = (BacklogPolicy if scale_from_zero else Policy)(
        target_value=target_value, min_capacity=min_capacity, max_capacity=max_capacity,
        scale_out_cooldown=scale_out_cooldown, scale_in_cooldown=scale_in_cooldown,
        disable_scale_in=disable_scale_in, scale_out_datapoints=scale_out_datapoints,
        scale_in_datapoints=scale_in_datapoints, scale_in_ratio=scale_in_ratio,
        provision_minutes=_provision(provision_minutes),
        **({"scale_from_zero": True} if scale_from_zero else {}),
    ).check()
    series = traffic.load()
    result = simulate_run(run_dir, series, policy, safety_factor=factor,
                          slo=slo_override(run_dir, slo, max_error_rate),
                          instance_price=instance_price,
                          violation_budget=violation_budget, metric=metric,
                          calibrate=provision_minutes is None)  # fmt: skip
    if result.calibration is not None:
        echo(f"note: {result.calibration.describe()}")
    if result.choice is not None:
        echo(format_choice(result.choice, result.simulation))
    echo(format_simulation(result.simulation).rstrip())
    echo(f"Wrote {result.path}")
    if not result.budget_met:
        raise typer.Exit(1)




def _provision(minutes: int | None) -> int:
    """--provision-minutes, else simulate's default (the run's calibration replaces the
    default, never a value given: recommender.calibration)."""
    return DEFAULT_PROVISION_MINUTES if minutes is None else minutes
