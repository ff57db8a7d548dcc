"""The `recommender` command. Thin: parse, call one library function, render, exit code.

Every RecommenderError and every usage error ends as one line on stderr,
`Error: <what> (<how to fix>)`, and a non-zero exit code; never a traceback.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

# Typer (>= 0.29) vendors click; its usage errors are only importable from there.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from recommender import __version__
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR, parse_safety_factor
from recommender.errors import ConfigError, RecommenderError
from recommender.options import AwsAccess, RunOptions
from recommender.plan import DEFAULT_VARIANT
from recommender.policy import COOLDOWN_SECONDS, POLICY_NAME, Kind, Metric, PolicyRequest
from recommender.simulate import (
    DEFAULT_PROVISION_MINUTES,
    DEFAULT_SCALE_IN_DATAPOINTS,
    DEFAULT_SCALE_IN_RATIO,
    DEFAULT_SCALE_OUT_DATAPOINTS,
    Policy,
)
from recommender.traffic import TrafficSpec

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help texts show defaults in [brackets]: plain text, not Rich markup that would eat them.
    rich_markup_mode=None,
    help="Load-test a SageMaker endpoint and size its target-tracking autoscaling policy.",
)


class Model(str, Enum):
    sklearn = "sklearn"
    sleep = "sleep"


class Arrivals(str, Enum):
    uniform = "uniform"
    poisson = "poisson"


def echo(text: str) -> None:
    typer.echo(text)


def _asks(yes: bool) -> Callable[[str], bool]:
    """Ask only on a terminal; scripts and CI never block on a prompt."""
    return lambda message: yes or not sys.stdin.isatty() or typer.confirm(message, default=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8080,
    instances: Annotated[int, typer.Option(help="Worker processes, one per 'instance'.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Requests one instance serves at once.")] = 4,
    service_time_ms: Annotated[float, typer.Option(help="Time a request holds a slot.")] = 20.0,
    model: Annotated[Model, typer.Option(help="sklearn (iris classifier) or sleep.")] = (
        Model.sklearn
    ),
    max_queue: Annotated[int, typer.Option(help="Waiting requests per instance before 503.")] = (
        100
    ),
    publish_metrics: Annotated[
        bool, typer.Option(help="Publish SageMaker's CloudWatch metrics (needs --endpoint-name).")
    ] = False,
    endpoint_name: Annotated[str | None, typer.Option(help="EndpointName dimension.")] = None,
    variant: Annotated[str, typer.Option(help="VariantName dimension.")] = DEFAULT_VARIANT,
    metrics_period: Annotated[int, typer.Option(help="Seconds per published datapoint.")] = 60,
    region: Annotated[str | None, typer.Option(help="Region for CloudWatch.")] = None,
    aws_endpoint_url: Annotated[
        str | None, typer.Option(help="CloudWatch URL (e.g. the local AWS emulator).")
    ] = None,
) -> None:
    """Run a local SageMaker-contract model server (GET /ping, POST /invocations)."""
    from recommender.local.publisher import PublishConfig
    from recommender.local.server import ServerConfig, validate
    from recommender.local.server import serve as run_server

    publish = (PublishConfig.from_flags(endpoint_name, variant, metrics_period, region,
                                        aws_endpoint_url) if publish_metrics else None)  # fmt: skip
    config = ServerConfig(host, port, instances, concurrency, service_time_ms, model.value,
                          max_queue, publish)  # fmt: skip
    validate(config)

    def ready(url: str) -> None:
        echo(f"Listening on {url} (capacity {config.capacity_rps:g} requests/s)")

    run_server(config, ready)


class SloSource(str, Enum):
    client = "client"
    server = "server"


class Search(str, Enum):
    adaptive = "adaptive"
    fixed = "fixed"


# Options several commands share.
RegionOpt = Annotated[
    str | None, typer.Option(help="AWS region [the run's, or the saved state's].")
]
ProfileOpt = Annotated[str | None, typer.Option(help="AWS profile (boto3's chain).")]
AwsUrlOpt = Annotated[
    str | None, typer.Option(help="Override the AWS API URL (e.g. the local emulator).")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Skip the confirmation.")]
StateFileOpt = Annotated[
    Path | None,
    typer.Option(help="The saved state before each change [RUN_DIR/autoscaling_state.json, "
                 "else ./autoscaling_state.json]."),  # fmt: skip
]


Command = Callable[..., None]


def _flag_groups(**groups: Callable[..., Any]) -> Callable[[Command], Command]:
    """Flags several commands share, declared once. Each group is a function whose
    parameters are the flags and whose result is an options object; the command names a
    parameter after the group and receives that object. Typer reads the command's
    signature with the group's flags in the parameter's place (so `--help` keeps its order)."""

    def decorate(command: Command) -> Command:
        members: dict[str, list[str]] = {}
        params: list[inspect.Parameter] = []
        for param in inspect.signature(command, eval_str=True).parameters.values():
            if param.name not in groups:
                params.append(param)
                continue
            flags = inspect.signature(groups[param.name], eval_str=True).parameters.values()
            members[param.name] = [f.name for f in flags]
            params.extend(flags)

        def parsed(**flags: Any) -> None:
            for name, group in groups.items():
                flags[name] = group(**{flag: flags.pop(flag) for flag in members[name]})
            command(**flags)

        parsed.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        parsed.__name__, parsed.__doc__ = command.__name__, command.__doc__
        return parsed

    return decorate


def _run_options(
    url: Annotated[
        str | None, typer.Option(help="Invocation URL, e.g. http://host:8080/invocations.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="SageMaker endpoint name (signed InvokeEndpoint).")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="Production variant to size.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the endpoint.")] = None,
    profile: ProfileOpt = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Override the SageMaker runtime URL.")
    ] = None,
    aws_endpoint_url: AwsUrlOpt = None,
    custom_attributes: Annotated[
        str | None, typer.Option(help="X-Amzn-SageMaker-Custom-Attributes.")
    ] = None,
    target_variant: Annotated[
        str | None, typer.Option(help="X-Amzn-SageMaker-Target-Variant.")
    ] = None,
    cloudwatch_period: Annotated[
        int | None, typer.Option(help="CloudWatch period in s (default 60, shorter stages less).")
    ] = None,
    cloudwatch_wait: Annotated[
        float | None, typer.Option(help="Longest wait for late CloudWatch data, s.")
    ] = None,
    slo: Annotated[
        list[str], typer.Option(help='Latency objective, e.g. "p95<=300ms"; repeatable.')
    ] = ["p95<=300ms"],  # noqa: B006 - typer reads the default, never mutates it
    max_error_rate: Annotated[float, typer.Option(help="Errors allowed per stage.")] = 0.01,
    start_rps: Annotated[float, typer.Option(help="Offered rate of the first stage.")] = 10.0,
    max_rps: Annotated[float | None, typer.Option(help="Offered rate of the last stage.")] = None,
    stages: Annotated[int, typer.Option(help="Number of stages, evenly spaced.")] = 8,
    stage_seconds: Annotated[
        float | None,
        typer.Option(help="Length of each stage [30; 180 on AWS: two whole CloudWatch minutes]."),
    ] = None,
    warmup_seconds: Annotated[
        float | None, typer.Option(help="Seconds left out at each stage start [20%, <=5].")
    ] = None,
    plan: Annotated[
        Path | None, typer.Option(help="Plan file (YAML/JSON): a fixed ramp of your own.")
    ] = None,
    search: Annotated[
        Search, typer.Option(help="adaptive: grow, then bisect to --precision; fixed: the ramp.")
    ] = Search.adaptive,
    precision: Annotated[
        float, typer.Option(help="Adaptive: stop when the bracket is this narrow.")
    ] = 0.05,
    max_duration: Annotated[
        float | None, typer.Option(help="Adaptive: test time budget, s [1800; 7200 on AWS].")
    ] = None,
    max_requests: Annotated[int | None, typer.Option(help="Adaptive: request budget.")] = None,
    abort_error_rate: Annotated[
        float, typer.Option(help="End a stage at once above this error rate.")
    ] = 0.10,
    abort_latency: Annotated[
        str, typer.Option(help='End a stage at once above this latency: "3x" the SLO or "900ms".')
    ] = "3x",
    arrivals: Annotated[Arrivals, typer.Option(help="Spacing of arrivals.")] = Arrivals.uniform,
    users: Annotated[int, typer.Option(help="Locust users; 0 sizes from the rate.")] = 0,
    payload: Annotated[
        Path | None, typer.Option(help="JSON lines, CSV rows, or a directory of bodies.")
    ] = None,
    content_type: Annotated[str | None, typer.Option(help="Overrides the payload's.")] = None,
    accept: Annotated[str | None, typer.Option(help="Accept header.")] = None,
    header: Annotated[list[str], typer.Option(help='Extra header "Name: value".')] = [],  # noqa: B006
    locustfile: Annotated[Path | None, typer.Option(help="Your own locustfile.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: from the URL).")] = None,
    instances: Annotated[
        int | None, typer.Option(help="Instances serving it [1; an endpoint's: its count].")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("reports"),
    safety_factor: Annotated[
        float, typer.Option(help="Share of capacity to target (run only).")
    ] = DEFAULT_SAFETY_FACTOR,
    seed: Annotated[int | None, typer.Option(help="Seed for Poisson arrivals.")] = None,
    workers: Annotated[
        int, typer.Option(help="Local Locust worker processes (distributed mode); 0: one process.")
    ] = 0,
    master: Annotated[
        bool, typer.Option("--master", help="Be the master of workers on other machines.")
    ] = False,
    expect_workers: Annotated[
        int, typer.Option(help="With --master: workers to wait for (`recommender worker`).")
    ] = 0,
    master_bind_host: Annotated[
        str, typer.Option(help="With --master: address the workers connect to.")
    ] = "0.0.0.0",
    master_port: Annotated[int, typer.Option(help="With --master: its port.")] = 5557,
    keep_requests: Annotated[
        bool, typer.Option("--keep-requests", help="Also write every request as Parquet rows.")
    ] = False,
    apply_policy: Annotated[
        bool, typer.Option("--apply", help="run: then apply the recommended policy.")
    ] = False,
    min_capacity: Annotated[int | None, typer.Option(help="--apply: MinCapacity.")] = None,
    max_capacity: Annotated[int | None, typer.Option(help="--apply: MaxCapacity.")] = None,
) -> RunOptions:
    """The flags of `loadtest` and `run`, declared once (see `_flag_groups`)."""
    return RunOptions(
        url=url, endpoint=endpoint, variant=variant, region=region, profile=profile,
        endpoint_url=endpoint_url, aws_endpoint_url=aws_endpoint_url, name=name,
        instances=instances, payload=payload, content_type=content_type, accept=accept,
        header=tuple(header), custom_attributes=custom_attributes,
        target_variant=target_variant, locustfile=locustfile, slo=tuple(slo),
        max_error_rate=max_error_rate, search=search.value, plan=plan, start_rps=start_rps,
        max_rps=max_rps, stages=stages, stage_seconds=stage_seconds,
        warmup_seconds=warmup_seconds, precision=precision, max_duration=max_duration,
        max_requests=max_requests, abort_error_rate=abort_error_rate,
        abort_latency=abort_latency, arrivals=arrivals.value, users=users, seed=seed,
        workers=workers, master=master, expect_workers=expect_workers,
        master_bind_host=master_bind_host, master_port=master_port,
        keep_requests=keep_requests, cloudwatch_period=cloudwatch_period,
        cloudwatch_wait=cloudwatch_wait, out=out, safety_factor=safety_factor,
        apply=apply_policy, min_capacity=min_capacity, max_capacity=max_capacity,
    )  # fmt: skip


@app.command("loadtest")
@_flag_groups(options=_run_options)
def loadtest(options: RunOptions, yes: YesOpt = False) -> None:
    """Drive a staged, open-loop load ramp with Locust; write a run directory."""
    from recommender import pipeline

    lt = pipeline.loadtest(options, echo=echo, confirm=_asks(yes))
    t = lt.totals
    echo(f"{lt.status}: {t['requests']} requests, {t['errors']} errors -> {lt.run_dir}")
    if lt.status == "interrupted":
        raise typer.Exit(130)


@app.command("run")
@_flag_groups(options=_run_options)
def run(options: RunOptions, yes: YesOpt = False) -> None:
    """loadtest + analyze + reports (html, md) in one command."""
    from recommender import pipeline

    result = pipeline.run(options, echo=echo, confirm=_asks(yes))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command()
def worker(
    master_host: Annotated[str, typer.Option(help="The master's address.")],
    master_port: Annotated[int, typer.Option(help="The master's port.")] = 5557,
    locustfile: Annotated[
        Path | None, typer.Option(help="The same locustfile as the master's, if any.")
    ] = None,
) -> None:
    """Join a `run --master` as a load generator (Locust's distributed mode)."""
    from recommender.loadgen.runner import start_worker

    if locustfile is not None and not locustfile.is_file():
        raise ConfigError(f"locustfile not found: {locustfile}", "check --locustfile")
    echo(f"Worker for the master at {master_host}:{master_port}; Ctrl-C to leave.")
    proc = start_worker(master_host, master_port, locustfile, None)
    try:
        raise typer.Exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise


@app.command()
def collect(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made with --endpoint.")],
    period: Annotated[int | None, typer.Option(help="CloudWatch period, s.")] = None,
    wait: Annotated[float | None, typer.Option(help="Longest wait for late data, s.")] = None,
    profile: ProfileOpt = None,
    aws_endpoint_url: AwsUrlOpt = None,
) -> None:
    """(Re-)collect a run's CloudWatch metrics; they arrive minutes late."""
    from recommender import pipeline

    got = pipeline.collect(run_dir, period=period, wait_seconds=wait, echo=echo,
                           access=AwsAccess(profile=profile, endpoint_url=aws_endpoint_url))
    echo(f"{got.rows} datapoints at {got.period}s -> {got.path}")
    for w in got.warnings:
        echo(f"warning: {w}")


# Options shared by `simulate` and `analyze --safety-factor auto`: the traffic to replay and
# the policy's bounds (recommender.traffic, recommender.simulate).
SafetyFactorOpt = Annotated[
    str, typer.Option(help='Share of capacity to target, or "auto" (simulate: needs traffic).')
]
TrafficOpt = Annotated[
    Path | None,
    typer.Option("--traffic", help="CSV of timestamp,requests per minute or second "
                 "(CloudWatch Invocations Sum exports too)."),  # fmt: skip
]
PatternOpt = Annotated[str | None, typer.Option(help="Synthetic traffic: diurnal, spike, step.")]
PeakRpsOpt = Annotated[float | None, typer.Option(help="Pattern's peak requests/s.")]
MinRpsOpt = Annotated[float | None, typer.Option(help="Pattern's low requests/s [peak/10].")]
RampOpt = Annotated[
    float | None, typer.Option(help="Pattern's rise from min to peak, minutes [120/5/0].")
]
DaysOpt = Annotated[int | None, typer.Option(help="Days of pattern [1].")]
MinCapOpt = Annotated[int | None, typer.Option(help="MinCapacity [2].")]
MaxCapOpt = Annotated[int | None, typer.Option(help="MaxCapacity [instances at peak x 1.5].")]
ProvisionOpt = Annotated[int, typer.Option(help="Minutes a new instance takes to serve.")]
BudgetOpt = Annotated[int, typer.Option(help="SLO-violating minutes auto may allow.")]

NO_TRAFFIC = TrafficSpec()  # a placeholder default: `_flag_groups` passes the real one


def _traffic_flags(
    traffic: TrafficOpt = None,
    pattern: PatternOpt = None,
    peak_rps: PeakRpsOpt = None,
    min_rps: MinRpsOpt = None,
    ramp_minutes: RampOpt = None,
    days: DaysOpt = None,
) -> TrafficSpec:
    """The traffic to replay, for `simulate` and `analyze --safety-factor auto`."""
    return TrafficSpec(file=traffic, pattern=pattern, peak_rps=peak_rps, min_rps=min_rps,
                       ramp_minutes=ramp_minutes, days=days)  # fmt: skip

# The policy's options `apply` and `simulate` share (recommender.policy.tracking).
CooldownOpt = Annotated[int, typer.Option(help="Seconds.")]
DisableScaleInOpt = Annotated[
    bool, typer.Option("--disable-scale-in", help="The policy never scales in.")
]

# Re-judging a run: `analyze`, `report` and `simulate` take the run's SLO, or these instead.
SloOpt = Annotated[list[str] | None, typer.Option(help="Override the run's SLO.")]
MaxErrorRateOpt = Annotated[float | None, typer.Option(help="Override the run's.")]


@app.command()
@_flag_groups(traffic=_traffic_flags)
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    slo: SloOpt = None,
    max_error_rate: MaxErrorRateOpt = None,
    safety_factor: SafetyFactorOpt = str(DEFAULT_SAFETY_FACTOR),
    traffic: TrafficSpec = NO_TRAFFIC,
    min_capacity: MinCapOpt = None,
    max_capacity: MaxCapOpt = None,
    provision_minutes: ProvisionOpt = DEFAULT_PROVISION_MINUTES,
    violation_budget: BudgetOpt = 0,
    slo_source: Annotated[
        SloSource,
        typer.Option(help="Judge latency as the client saw it, or by CloudWatch ModelLatency."),
    ] = SloSource.client,
) -> None:
    """Analyse a run directory: stage table, capacity per instance, target value."""
    from recommender.pipeline import slo_override
    from recommender.replay import analyze as analyze_run
    from recommender.report.render import format_summary
    from recommender.report.simulation import format_choice

    analysis = analyze_run(
        run_dir, slo=slo_override(run_dir, slo, max_error_rate),
        safety_factor=parse_safety_factor(safety_factor),
        traffic=traffic,
        policy=Policy(min_capacity=min_capacity, max_capacity=max_capacity,
                      provision_minutes=provision_minutes),
        violation_budget=violation_budget, slo_source=slo_source.value,
        on_choice=lambda choice: echo(format_choice(choice)),
    )  # fmt: skip
    echo(format_summary(analysis).rstrip())
    if analysis.recommendation is None:
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
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
                      instance_price=instance_price, min_capacity_floor=min_capacity_floor)
    result = write_reports(
        run_dir, slo_override(run_dir, slo, max_error_rate), safety_factor, traffic, formats
    )
    rec = result.analysis.recommendation
    if rec is None:
        echo("No recommendation: no stage passed the SLO.")
    else:
        echo(f"Recommended target value: {rec.target_value:.0f} ({rec.metric})")
    if result.sizing is not None:
        z = result.sizing
        echo(f"Sizing: {z.instances_at_peak} instance(s) at {z.peak_rps:g} rps; "
             f"MinCapacity {z.min_capacity}, MaxCapacity {z.max_capacity}")  # fmt: skip
    elif peak_rps is not None:
        echo("No sizing: there is no target value to size with.")
    for path in result.written:
        echo(f"Wrote {path}")
    if rec is None:
        raise typer.Exit(1)


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

    from recommender import runs
    from recommender.compare import compare_runs, format_comparison, parse_threshold

    threshold = parse_threshold(max_regression)
    result = compare_runs(runs.load_run(base_run), runs.load_run(new_run), threshold)
    if json_output:
        echo(json.dumps(result.to_dict(), indent=2))
    else:
        echo(format_comparison(result).rstrip())
    if result.regression:
        raise typer.Exit(1)


@app.command()
@_flag_groups(traffic=_traffic_flags)
def simulate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
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
    provision_minutes: ProvisionOpt = DEFAULT_PROVISION_MINUTES,
    disable_scale_in: DisableScaleInOpt = False,
    instance_price: Annotated[float | None, typer.Option(help="USD per instance-hour.")] = None,
    violation_budget: BudgetOpt = 0,
    slo: SloOpt = None,
    max_error_rate: MaxErrorRateOpt = None,
) -> None:
    """Replay traffic through the target-tracking policy before applying it; exit 1 when
    SLO-violating minutes exceed --violation-budget. Writes simulation.json."""
    from recommender.pipeline import slo_override
    from recommender.replay import simulate_run
    from recommender.report.simulation import format_choice, format_simulation

    factor = parse_safety_factor(safety_factor)
    policy = Policy(
        target_value=target_value, min_capacity=min_capacity, max_capacity=max_capacity,
        scale_out_cooldown=scale_out_cooldown, scale_in_cooldown=scale_in_cooldown,
        disable_scale_in=disable_scale_in, scale_out_datapoints=scale_out_datapoints,
        scale_in_datapoints=scale_in_datapoints, scale_in_ratio=scale_in_ratio,
        provision_minutes=provision_minutes,
    ).check()
    series = traffic.load()
    result = simulate_run(run_dir, series, policy, safety_factor=factor,
                          slo=slo_override(run_dir, slo, max_error_rate),
                          instance_price=instance_price,
                          violation_budget=violation_budget)  # fmt: skip
    if result.choice is not None:
        echo(format_choice(result.choice))
    echo(format_simulation(result.simulation).rstrip())
    echo(f"Wrote {result.path}")
    if not result.budget_met:
        raise typer.Exit(1)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the run directory goes.")] = Path("reports"),
    yes: YesOpt = False,
) -> None:
    """Start a local model server (capacity 200 req/s), size it, and print the result."""
    from recommender.local.demo import run_demo
    from recommender.report.render import format_summary

    _ = yes  # the demo only talks to its own loopback server: nothing to confirm
    result = run_demo(out, echo)
    a = result.analysis
    echo("")
    echo(format_summary(a).rstrip())
    estimate = a.capacity.rps_per_instance
    if estimate:
        echo(
            f"\nTrue capacity of the demo server: {result.true_capacity:g} rps; estimate "
            f"{estimate:.1f} ({estimate / result.true_capacity:.0%})"
        )
    echo(f"Run directory: {result.loadtest.run_dir}")
    if a.recommendation is None:
        raise typer.Exit(1)


# --- applying the policy: recommender.policy plans it, recommender.apply executes it ----------

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show the changes and the aws commands; change nothing.")
]
NO_ACCESS = AwsAccess()  # a placeholder default: `_flag_groups` passes the real one


def _aws_flags(
    region: RegionOpt = None, profile: ProfileOpt = None, aws_endpoint_url: AwsUrlOpt = None
) -> AwsAccess:
    """Where `apply` and `rollback` call AWS."""
    return AwsAccess(region=region, profile=profile, endpoint_url=aws_endpoint_url)


@app.command()
@_flag_groups(access=_aws_flags)
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
    kind: Annotated[Kind, typer.Option(help="What scales.")] = Kind.VARIANT,
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
                           confirm=_asks(yes))  # fmt: skip
    if outcome is Outcome.DECLINED:
        raise typer.Exit(1)


@app.command()
@_flag_groups(access=_aws_flags)
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
                      echo=echo, confirm=_asks(yes))  # fmt: skip
    if outcome is Outcome.DECLINED:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    echo(__version__)


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="recommender", standalone_mode=False)
    except RecommenderError as exc:
        typer.echo(f"Error: {exc.one_line()}", err=True)
        return exc.exit_code
    except NoArgsIsHelpError:
        typer.echo(command.get_help(typer.Context(command)))
        return 0
    except UsageError as exc:
        where = f"{exc.ctx.command_path} --help" if exc.ctx else "recommender --help"
        message = " ".join(exc.format_message().split())
        typer.echo(f"Error: {message} (see {where})", err=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("Aborted.", err=True)
        return 130
    return result if isinstance(result, int) else 0
