"""Commands over several endpoints: the local hosting layer (`host`), `sweep` (deploy, test
and price instance types) and `cleanup` (what a sweep left behind)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.app import app, asks, echo, echo_err
from recommender.cli.flags import (
    AwsUrlOpt,
    DryRunOpt,
    JsonOpt,
    MinRpsOpt,
    Model,
    ProfileOpt,
    RampOpt,
    RegionOpt,
    TrafficOpt,
    YesOpt,
    flag_groups,
    view_flags,
)
from recommender.cli.live import LiveView
from recommender.errors import ConfigError
from recommender.plan import DEFAULT_VARIANT

NO_VIEW = LiveView()  # a placeholder default: `flag_groups` passes the real one


@app.command()
def host(
    aws_endpoint_url: Annotated[
        str, typer.Option(help="The AWS emulator's URL (moto server) whose endpoints to host.")
    ],
    region: Annotated[str, typer.Option(help="Region of the endpoints.")] = "us-east-1",
    host_: Annotated[str, typer.Option("--host", help="Address the router binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Router port; 0 picks a free one.")] = 0,
    poll_seconds: Annotated[float, typer.Option(help="How often the emulator is read.")] = 1.0,
    provision_seconds: Annotated[
        float, typer.Option(help="A new instance serves this long after its launch.")
    ] = 2.0,
    metrics_period: Annotated[int, typer.Option(help="Seconds per published datapoint.")] = 60,
    model: Annotated[Model, typer.Option(help="sklearn (iris classifier) or sleep.")] = (
        Model.sklearn
    ),
    max_queue: Annotated[int, typer.Option(help="Waiting requests per instance before 503.")] = (
        100
    ),
    minute_seconds: Annotated[
        float, typer.Option(help="The local scaler's minute in real seconds (2: a minute in "
                            "two seconds; needs --metrics-period 1).")  # fmt: skip
    ] = 60.0,
    warm_spares: Annotated[
        int, typer.Option(help="Model servers kept started per variant for the next "
                          "instances, so --provision-seconds is a scale-out's whole delay.")
    ] = 0,
) -> None:
    """Host the AWS emulator's endpoints locally: a model server per endpoint (capacity from
    its instance type), one runtime URL for all (`run --endpoint-url`)."""
    from recommender.local.hosting import HostingConfig, serve_hosting

    config = HostingConfig(aws_endpoint_url, region, host_, port, poll_seconds,
                           provision_seconds, metrics_period, model.value, max_queue,
                           minute_seconds=minute_seconds, warm_spares=warm_spares)  # fmt: skip

    def ready(url: str) -> None:
        echo(f"Listening on {url} (the SageMaker runtime of the endpoints in "
             f"{aws_endpoint_url}: run --endpoint E --endpoint-url {url} "
             f"--aws-endpoint-url {aws_endpoint_url})")

    serve_hosting(config.check(), ready, echo_err)


@app.command()
@flag_groups(view=view_flags)
def sweep(
    max_rps: Annotated[float, typer.Option(help="The search's ceiling, for every configuration.")],
    peak_rps: Annotated[
        float | None, typer.Option(help="Traffic's peak requests/s (the pattern's).")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="The SageMaker model each type serves.")
    ] = None,
    instance_types: Annotated[
        list[str], typer.Option(help="Types to deploy and test, comma-separated.")
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    endpoints: Annotated[
        list[str], typer.Option(help="Or: endpoints you deployed, comma-separated.")
    ] = [],  # noqa: B006
    instance_price: Annotated[
        list[str], typer.Option(help="TYPE=USD per hour, overriding the built-in table.")
    ] = [],  # noqa: B006
    min_rps: MinRpsOpt = None,
    pattern: Annotated[str, typer.Option(help="Traffic for the day's cost: diurnal, spike, "
                                         "step.")] = "diurnal",  # fmt: skip
    ramp_minutes: RampOpt = None,
    traffic: TrafficOpt = None,
    slo: Annotated[
        list[str], typer.Option(help='Latency objective, e.g. "p95<=300ms".')
    ] = ["p95<=300ms"],  # noqa: B006
    max_error_rate: Annotated[float, typer.Option(help="Errors allowed per stage.")] = 0.01,
    start_rps: Annotated[float, typer.Option(help="The search's first rate.")] = 10.0,
    stage_seconds: Annotated[
        float | None, typer.Option(help="Length of each stage [30; 180 on AWS].")
    ] = None,
    warmup_seconds: Annotated[
        float | None, typer.Option(help="Seconds left out per stage.")
    ] = None,
    precision: Annotated[float, typer.Option(help="Stop when the bracket is this narrow.")] = 0.05,
    max_duration: Annotated[
        float | None, typer.Option(help="Test time per configuration, s [1800; 7200 on AWS].")
    ] = None,
    max_requests: Annotated[int | None, typer.Option(help="Requests per configuration.")] = None,
    safety_factor: Annotated[float, typer.Option(help="Share of capacity to target.")] = 0.5,
    parallel: Annotated[int, typer.Option(help="Configurations tested at once.")] = 1,
    instance_count: Annotated[int, typer.Option(help="Instances per deployed endpoint.")] = 1,
    variant: Annotated[str, typer.Option(help="Variant name (deployed) or to test.")] = (
        DEFAULT_VARIANT
    ),
    keep: Annotated[bool, typer.Option("--keep", help="Keep the winner deployed.")] = False,
    payload: Annotated[
        Path | None, typer.Option(help="JSON lines, CSV rows, or a directory.")
    ] = None,
    content_type: Annotated[str | None, typer.Option(help="Overrides the payload's.")] = None,
    workers: Annotated[int, typer.Option(help="Local Locust worker processes.")] = 0,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Override the SageMaker runtime URL.")
    ] = None,
    aws_endpoint_url: AwsUrlOpt = None,
    cloudwatch_period: Annotated[int | None, typer.Option(help="CloudWatch period, s.")] = None,
    cloudwatch_wait: Annotated[float | None, typer.Option(help="Wait for late data, s.")] = None,
    out: Annotated[Path, typer.Option(help="Where the sweep directory goes.")] = Path("reports"),
    yes: YesOpt = False,
    json_output: JsonOpt = False,
    view: LiveView = NO_VIEW,
) -> None:
    """Deploy, test and price several instance types (or compare --endpoints); rank them
    by the day's cost for the traffic, and delete what was deployed."""
    from recommender.options import RunOptions
    from recommender.report.sweep import format_sweep_text
    from recommender.sweep import SweepOptions, load_sweep, run_sweep
    from recommender.traffic import TrafficSpec

    load = RunOptions(
        endpoint="(each configuration's)", variant=None if endpoints else variant,
        region=region, profile=profile, endpoint_url=endpoint_url,
        aws_endpoint_url=aws_endpoint_url, payload=payload, content_type=content_type,
        slo=tuple(slo), max_error_rate=max_error_rate, start_rps=start_rps, max_rps=max_rps,
        stage_seconds=stage_seconds, warmup_seconds=warmup_seconds, precision=precision,
        max_duration=max_duration, max_requests=max_requests, workers=workers,
        cloudwatch_period=cloudwatch_period, cloudwatch_wait=cloudwatch_wait, out=out,
        safety_factor=safety_factor,
    )  # fmt: skip
    spec = (TrafficSpec(file=traffic) if traffic is not None else
            TrafficSpec(pattern=pattern, peak_rps=peak_rps, min_rps=min_rps,
                        ramp_minutes=ramp_minutes))  # fmt: skip
    if traffic is not None and (peak_rps is not None or min_rps is not None):
        raise ConfigError("--peak-rps and --min-rps shape a --pattern",
                          "leave them out with --traffic")  # fmt: skip
    if traffic is None and peak_rps is None:
        raise ConfigError("--peak-rps is needed", "the traffic to size and price for, e.g. "
                          "--peak-rps 500 (or --traffic FILE)")  # fmt: skip
    options = SweepOptions(
        load=load, traffic=spec, model_name=model_name,
        instance_types=_split(instance_types), endpoints=_split(endpoints),
        instance_count=instance_count, variant=variant, prices=tuple(instance_price),
        parallel=parallel, keep=keep,
    )  # fmt: skip
    view.err = json_output  # with --json, stdout holds sweep.json alone; progress: stderr
    with view:
        result = run_sweep(options, echo=view.echo, confirm=asks(yes), watch=view.update)
    doc = load_sweep(result.sweep_dir)
    if json_output:
        echo(json.dumps(doc, indent=2))
    else:
        echo("")
        echo(format_sweep_text(doc).rstrip())
        echo(f"\nSweep directory: {result.sweep_dir}")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command()
def cleanup(
    sweep_id: Annotated[
        str | None, typer.Option(help="Only this sweep's (its id, e.g. rs-1129161502).")
    ] = None,
    dry_run: DryRunOpt = False,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    aws_endpoint_url: AwsUrlOpt = None,
    yes: YesOpt = False,
) -> None:
    """Delete the endpoints and endpoint configs sweeps left behind (found by their tag)."""
    from recommender.options import AwsAccess
    from recommender.sweep import cleanup as run_cleanup

    run_cleanup(AwsAccess(region=region, profile=profile, endpoint_url=aws_endpoint_url),
                sweep_id, echo=echo, confirm=asks(yes), dry_run=dry_run)  # fmt: skip


def _split(texts: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x.strip() for t in texts for x in t.split(",") if x.strip()))
