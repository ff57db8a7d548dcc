"""Commands that change the endpoint's autoscaling (recommender.policy plans the change,
recommender.apply executes it) and `verify`, which checks a policy in place
(recommender.verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.app import app, asks, echo
from recommender.cli.flags import (
    NO_ACCESS,
    NO_TRAFFIC,
    CooldownOpt,
    DisableScaleInOpt,
    DryRunOpt,
    RunDirArg,
    StateFileOpt,
    YesOpt,
    aws_flags,
    flag_groups,
    traffic_flags,
)
from recommender.errors import ExitCode
from recommender.options import AwsAccess
from recommender.policy import COOLDOWN_SECONDS, POLICY_NAME, Kind, Metric, PolicyRequest
from recommender.traffic import TrafficSpec


@app.command()
@flag_groups(access=aws_flags)
def apply(
    run_dir: Annotated[
        Path | None, typer.Argument(help="A run directory: its endpoint and recommendation.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Endpoint [the run's].")] = None,
    variant: Annotated[
        str | None, typer.Option(help="Production variant [the run's, else AllTraffic].")
    ] = None,
    inference_component: Annotated[
        str | None, typer.Option(help="Inference component name (--kind inference-component).")
    ] = None,
    kind: Annotated[
        Kind | None,
        typer.Option(help="What scales [what the run measured: inference-component, async, "
                     "serverless, else variant]."),  # fmt: skip
    ] = None,
    metric: Annotated[
        Metric | None,
        typer.Option(help="invocations [default], or concurrency (high-resolution; target by "
                     "Little's law from the run)."),  # fmt: skip
    ] = None,
    target_value: Annotated[
        str | None, typer.Option(help="Target value [from the run's recommendation].")
    ] = None,
    min_capacity: Annotated[
        int | None, typer.Option(help="MinCapacity [the run's sizing: report --peak-rps].")
    ] = None,
    max_capacity: Annotated[
        int | None, typer.Option(help="MaxCapacity [the run's sizing: report --peak-rps].")
    ] = None,
    policy_name: Annotated[
        str, typer.Option(help="Policy name; another than the default shows as a custom "
                          "policy in the SageMaker console.")  # fmt: skip
    ] = POLICY_NAME,
    # --help lists the cooldowns in this order (in, then out), as it always has.
    scale_in_cooldown: CooldownOpt = COOLDOWN_SECONDS,
    scale_out_cooldown: CooldownOpt = COOLDOWN_SECONDS,
    disable_scale_in: DisableScaleInOpt = False,
    scale_from_zero: Annotated[
        bool,
        typer.Option("--scale-from-zero", help="async: also a step policy and its CloudWatch "
                     "alarm on HasBacklogWithoutCapacity, adding one instance."),  # fmt: skip
    ] = False,
    peak_rps: Annotated[
        float | None, typer.Option(help="Expected peak requests/s: warn if MaxCapacity is short.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Apply from a run whose capacity is not trustworthy.")
    ] = False,
    dry_run: DryRunOpt = False,
    state_file: StateFileOpt = None,
    access: AwsAccess = NO_ACCESS,
    yes: YesOpt = False,
) -> None:
    """Apply the target-tracking policy with Application Auto Scaling: check, show the
    changes, save what was there, apply, read back (--dry-run: show the aws commands)."""
    request = PolicyRequest(
        target_value=target_value, min_capacity=min_capacity, max_capacity=max_capacity,
        scale_out_cooldown=scale_out_cooldown, scale_in_cooldown=scale_in_cooldown,
        disable_scale_in=disable_scale_in, kind=kind, metric=metric, endpoint=endpoint,
        variant=variant, inference_component=inference_component, policy_name=policy_name,
        scale_from_zero=scale_from_zero, peak_rps=peak_rps, force=force,
    )
    from recommender.apply import Outcome
    from recommender.apply import apply as apply_policy

    outcome = apply_policy(run_dir=run_dir, request=request, dry_run=dry_run,
                           state_file=state_file, access=access, echo=echo,
                           confirm=asks(yes))  # fmt: skip
    if outcome is Outcome.DECLINED:
        raise typer.Exit(1)


@app.command()
@flag_groups(access=aws_flags)
def rollback(
    run_dir: Annotated[
        Path | None, typer.Argument(help="The run directory the policy was applied from.")
    ] = None,
    state_file: StateFileOpt = None,
    dry_run: DryRunOpt = False,
    access: AwsAccess = NO_ACCESS,
    yes: YesOpt = False,
) -> None:
    """Restore the autoscaling state saved by the last `apply` (one apply per rollback),
    down to "there was no policy" (deregister)."""
    from recommender.apply import Outcome
    from recommender.apply import rollback as restore

    outcome = restore(run_dir=run_dir, state_file=state_file, dry_run=dry_run, access=access,
                      echo=echo, confirm=asks(yes))  # fmt: skip
    if outcome is Outcome.DECLINED:
        raise typer.Exit(1)




@app.command()
@flag_groups(access=aws_flags, traffic=traffic_flags)
def verify(
    run_dir: RunDirArg,
    traffic: TrafficSpec = NO_TRAFFIC,
    minutes: Annotated[
        float | None, typer.Option(help="Compress the traffic replayed into this many minutes "
                                   "of wall clock (--minutes 48: a day, 2 s a minute); it must "
                                   "give the local scaler's minute, or 60 s against AWS "
                                   "[the local scaler's minute; real time on AWS].")  # fmt: skip
    ] = None,
    window: Annotated[
        int | None, typer.Option(help="Replay only this many minutes of the traffic [all]: a "
                                 "spike's or step's from 5 minutes before its 12:00 event, "
                                 "otherwise from the start.")  # fmt: skip
    ] = None,
    minute_seconds: Annotated[
        float | None, typer.Option(help="Real seconds per traffic minute, instead of "
                                   "--minutes.")  # fmt: skip
    ] = None,
    violation_budget: Annotated[
        int, typer.Option(help="Observed SLO-violating minutes allowed before exit 1.")
    ] = 0,
    endpoint_url: Annotated[
        str | None, typer.Option(help="The runtime's base URL [the run's].")
    ] = None,
    workers: Annotated[int, typer.Option(help="Local Locust worker processes.")] = 0,
    max_requests: Annotated[
        int | None, typer.Option(help="Stop the load after this many requests [the "
                                 "traffic's, + 5 standard deviations of a Poisson count + 10].")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replay even when no policy is on the endpoint.")
    ] = False,
    access: AwsAccess = NO_ACCESS,
) -> None:
    """Replay a traffic shape against the run's endpoint with its scaling policy live;
    compare what scaling did with what `simulate` predicts; calibrate the simulator. Writes
    verify.json/.md/.html and calibration.json into the run; exit 1 over the budget."""
    from recommender.report.verify import format_verify_text
    from recommender.verify import VerifyOptions
    from recommender.verify import verify as run_verify

    options = VerifyOptions(run_dir=run_dir, traffic=traffic, window=window, minutes=minutes,
                            minute_seconds=minute_seconds, violation_budget=violation_budget,
                            force=force, endpoint_url=endpoint_url, aws=access,
                            workers=workers, max_requests=max_requests)  # fmt: skip
    result = run_verify(options, echo)
    echo("")
    echo(format_verify_text(result.data).rstrip())
    if result.status == "interrupted":
        echo(f"interrupted: {result.observed.minutes} of {result.data['minutes_planned']} "
             f"traffic minutes played; what was observed is in {result.path} (and verify.md, "
             "verify.html)")  # fmt: skip
        raise typer.Exit(ExitCode.INTERRUPTED)
    if result.data["capped"]:
        echo(f"stopped: the load reached --max-requests {result.data['max_requests']:,} after "
             f"{result.observed.minutes} of {result.data['minutes_planned']} traffic minutes; "
             f"what was observed is in {result.path} (and verify.md, verify.html)")  # fmt: skip
        raise typer.Exit(ExitCode.FAILED)
    echo(f"Wrote {result.path} (and verify.md, verify.html)")
    if not result.budget_met:
        raise typer.Exit(1)
