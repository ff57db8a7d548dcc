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
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR
from recommender.errors import ConfigError, RecommenderError
from recommender.options import RunOptions
from recommender.plan import DEFAULT_VARIANT, Slo, parse_slo
from recommender.policy import POLICY_NAME, Kind, Metric, PolicyRequest

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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


def _confirm(message: str, yes: bool) -> None:
    """Ask only on a terminal; scripts and CI never block on a prompt."""
    if yes or not sys.stdin.isatty():
        return
    if not typer.confirm(message, default=True):
        raise typer.Exit(1)


def _confirmer(yes: bool) -> Callable[[str], None]:
    """The library's `confirm`: asks (unless --yes), raises typer.Exit(1) on "no"."""
    return lambda message: _confirm(message, yes)


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
RegionOpt = Annotated[str | None, typer.Option(help="AWS region [the run's].")]
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
    yes: YesOpt = False,
) -> tuple[RunOptions, bool]:
    """The flags of `loadtest` and `run`, declared once: Typer reads this signature for both
    commands (see `_load_command`), and the values become one RunOptions."""
    options = RunOptions(
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
    return options, yes


def _load_command(command: Callable[[RunOptions, bool], None]) -> Callable[..., None]:
    """A command taking every load-test flag: Typer reads the flags from `_run_options`'s
    signature, set on the function it registers, so they are written once for both."""

    def parsed(**flags: Any) -> None:
        command(*_run_options(**flags))

    parsed.__signature__ = inspect.signature(_run_options, eval_str=True)  # type: ignore[attr-defined]
    parsed.__doc__ = command.__doc__
    parsed.__name__ = command.__name__
    return parsed


@app.command("loadtest")
@_load_command
def loadtest(options: RunOptions, yes: bool) -> None:
    """Drive a staged, open-loop load ramp with Locust; write a run directory."""
    from recommender import pipeline

    lt = pipeline.loadtest(options, echo=echo, confirm=_confirmer(yes))
    t = lt.totals
    echo(f"{lt.status}: {t['requests']} requests, {t['errors']} errors -> {lt.run_dir}")
    if lt.status == "interrupted":
        raise typer.Exit(130)


@app.command("run")
@_load_command
def run(options: RunOptions, yes: bool) -> None:
    """loadtest + analyze + reports (html, md) in one command."""
    from recommender import pipeline

    result = pipeline.run(options, echo=echo, confirm=_confirmer(yes))
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

    got = pipeline.collect(run_dir, period=period, wait_seconds=wait, profile=profile,
                           aws_endpoint_url=aws_endpoint_url, echo=echo)  # fmt: skip
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


def _safety_factor(text: str) -> float | None:
    """A number, or None for "auto"."""
    from recommender.analysis.recommend import check_safety_factor

    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--safety-factor must be a number or auto (got {text!r})",
                          "e.g. 0.5, or auto with --traffic or --pattern") from None  # fmt: skip
    return check_safety_factor(value)


@app.command()
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    slo: Annotated[list[str] | None, typer.Option(help="Override the run's SLO.")] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="Override the run's.")] = None,
    safety_factor: SafetyFactorOpt = str(DEFAULT_SAFETY_FACTOR),
    traffic: TrafficOpt = None,
    pattern: PatternOpt = None,
    peak_rps: PeakRpsOpt = None,
    min_rps: MinRpsOpt = None,
    ramp_minutes: RampOpt = None,
    days: DaysOpt = None,
    min_capacity: MinCapOpt = None,
    max_capacity: MaxCapOpt = None,
    provision_minutes: ProvisionOpt = 6,
    violation_budget: BudgetOpt = 0,
    slo_source: Annotated[
        SloSource,
        typer.Option(help="Judge latency as the client saw it, or by CloudWatch ModelLatency."),
    ] = SloSource.client,
) -> None:
    """Analyse a run directory: stage table, capacity per instance, target value."""
    from recommender.pipeline import analyze_dir
    from recommender.report.render import format_summary

    factor = _safety_factor(safety_factor)
    the_slo = _slo_override(run_dir, slo, max_error_rate)
    if factor is None:
        from recommender.replay import analyze_with_choice, choose_for_run
        from recommender.report.simulation import format_choice
        from recommender.simulate import PolicyOptions
        from recommender.traffic import load_traffic

        if traffic is None and pattern is None:
            raise ConfigError("--safety-factor auto needs traffic to simulate",
                              "pass --traffic FILE or --pattern diurnal|spike|step "
                              "with --peak-rps")  # fmt: skip
        options = PolicyOptions(min_capacity, max_capacity,
                                provision_minutes=provision_minutes).check()  # fmt: skip
        series = load_traffic(traffic, pattern, peak_rps, min_rps, ramp_minutes, days)
        choice = choose_for_run(run_dir, series, options, slo=the_slo,
                                violation_budget=violation_budget)  # fmt: skip
        echo(format_choice(choice))
        analysis = analyze_with_choice(run_dir, the_slo, choice).analysis
    else:
        if traffic is not None or pattern is not None:
            raise ConfigError(
                "--traffic and --pattern are for --safety-factor auto",
                "add --safety-factor auto, or use `recommender simulate`",
            )
        analysis = analyze_dir(run_dir, the_slo, factor, slo_source.value)
    echo(format_summary(analysis).rstrip())
    if analysis.recommendation is None:
        raise typer.Exit(1)


def _slo_override(run_dir: Path, slo: list[str] | None, max_error_rate: float | None) -> Slo | None:
    """The run's SLO with the terms or error budget given on the command line, if any."""
    if not slo and max_error_rate is None:
        return None
    from recommender import runs

    base = runs.load_run(run_dir).slo
    texts = slo or [str(t) for t in base.terms]
    return parse_slo(texts, base.max_error_rate if max_error_rate is None else max_error_rate)


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
    slo: Annotated[list[str] | None, typer.Option(help="Override the run's SLO.")] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="Override the run's.")] = None,
    safety_factor: Annotated[float, typer.Option(help="Share of capacity to target.")] = (
        DEFAULT_SAFETY_FACTOR
    ),
) -> None:
    """Write the sizing report (report.html, report.md, analysis.json) into a run directory."""
    from recommender.pipeline import REPORT_FORMATS, write_reports
    from recommender.report.sizing import Traffic

    formats = [f.strip().lower() for text in format_ for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in REPORT_FORMATS]
    if bad or not formats:
        raise ConfigError(f"unknown --format {(bad or [''])[0]!r}", "use html, md and/or json")
    traffic = Traffic(peak_rps, min_rps, instance_type, instance_price, min_capacity_floor)
    result = write_reports(
        run_dir, _slo_override(run_dir, slo, max_error_rate), safety_factor, traffic, formats
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
def simulate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    traffic: TrafficOpt = None,
    pattern: PatternOpt = None,
    peak_rps: PeakRpsOpt = None,
    min_rps: MinRpsOpt = None,
    ramp_minutes: RampOpt = None,
    days: DaysOpt = None,
    min_capacity: MinCapOpt = None,
    max_capacity: MaxCapOpt = None,
    safety_factor: SafetyFactorOpt = str(DEFAULT_SAFETY_FACTOR),
    target_value: Annotated[
        float | None, typer.Option(help="Simulate this target value instead (today's policy).")
    ] = None,
    scale_out_datapoints: Annotated[int, typer.Option(help="High alarm's datapoints.")] = 3,
    scale_in_datapoints: Annotated[int, typer.Option(help="Low alarm's datapoints.")] = 15,
    scale_in_ratio: Annotated[float, typer.Option(help="Low alarm at this x target.")] = 0.9,
    scale_out_cooldown: Annotated[int, typer.Option(help="Seconds.")] = 300,
    scale_in_cooldown: Annotated[int, typer.Option(help="Seconds.")] = 300,
    provision_minutes: ProvisionOpt = 6,
    disable_scale_in: Annotated[
        bool, typer.Option("--disable-scale-in", help="The policy never scales in.")
    ] = False,
    instance_price: Annotated[float | None, typer.Option(help="USD per instance-hour.")] = None,
    violation_budget: BudgetOpt = 0,
    slo: Annotated[list[str] | None, typer.Option(help="Override the run's SLO.")] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="Override the run's.")] = None,
) -> None:
    """Replay traffic through the target-tracking policy before applying it; exit 1 when
    SLO-violating minutes exceed --violation-budget. Writes simulation.json."""
    from recommender.replay import simulate_run
    from recommender.report.simulation import format_choice, format_simulation
    from recommender.simulate import PolicyOptions
    from recommender.traffic import load_traffic

    factor = _safety_factor(safety_factor)
    options = PolicyOptions(min_capacity, max_capacity, scale_out_datapoints, scale_in_datapoints,
                            scale_in_ratio, scale_out_cooldown, scale_in_cooldown,
                            provision_minutes, disable_scale_in).check()  # fmt: skip
    series = load_traffic(traffic, pattern, peak_rps, min_rps, ramp_minutes, days)
    result = simulate_run(run_dir, series, options, safety_factor=factor,
                          target_value=target_value,
                          slo=_slo_override(run_dir, slo, max_error_rate),
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


def _state_path(run_dir: Path | None, state_file: Path | None) -> Path:
    from recommender.policy import STATE_FILE

    if state_file is not None:
        return state_file
    return run_dir / STATE_FILE if run_dir is not None else Path(STATE_FILE)


def _check_apply_after_run(
    command: str | None,
    endpoint: str | None,
    variant: str | None,
    min_capacity: int | None,
    max_capacity: int | None,
) -> None:
    from recommender.policy import build_plan

    if command != "run":
        raise ConfigError("--apply is for `recommender run`",
                          "or apply a run later: recommender apply RUN_DIR")  # fmt: skip
    if endpoint is None:
        raise ConfigError("--apply needs --endpoint", "a policy scales a SageMaker endpoint")
    # The bounds, checked with a stand-in target value: the real one comes from the run.
    build_plan(PolicyRequest(endpoint=endpoint, variant=variant, target_value=1.0,
                             min_capacity=min_capacity, max_capacity=max_capacity))  # fmt: skip


def _apply(
    run_dir: Path | None,
    request: PolicyRequest,
    *,
    dry_run: bool = False,
    state_file: Path | None = None,
    region: str | None = None,
    profile: str | None = None,
    aws_endpoint_url: str | None = None,
    yes: bool = False,
) -> None:
    import shlex

    from recommender.apply import apply_prepared, load_run_facts, prepare_apply, write_policy_files
    from recommender.aws import AwsClient
    from recommender.policy import (
        build_plan,
        format_changes,
        format_commands,
        format_plan,
        format_state,
    )

    run = load_run_facts(run_dir) if run_dir is not None else None
    plan = build_plan(request, run)
    aws = AwsClient.create(region or (run.target.get("region") if run else None), profile,
                           aws_endpoint_url)  # fmt: skip
    prepared = prepare_apply(aws, plan)
    echo(prepared.subject)
    echo(format_plan(plan).rstrip())
    for name in prepared.others:
        echo(f"note: policy {name} is on {plan.resource_id} too and stays; with several "
             "policies AWS scales out when any asks and in only when all agree")  # fmt: skip
    echo(format_changes(prepared.changes).rstrip())
    if dry_run:
        where = run_dir if run_dir is not None else Path(".")
        files = ", ".join(str(p) for p in write_policy_files(plan, where))
        echo(f"\nDry run: nothing was changed. These commands apply the plan; they read {files}."
             "\n")  # fmt: skip
        echo(format_commands(plan.calls(), str(where)).rstrip())
        return
    if not prepared.changes:
        return
    path = _state_path(run_dir, state_file)
    undo = (f"recommender rollback {shlex.quote(str(run_dir))}"
            if run_dir is not None and state_file is None
            else f"recommender rollback --state-file {shlex.quote(str(path))}")  # fmt: skip
    _confirm("Apply these changes?", yes)
    applied = apply_prepared(aws, prepared, path, f"run `{undo}`")
    echo("\nApplied. Read back:")
    echo(format_state(applied.state, applied.alarms).rstrip())
    echo(f"The state before the change is saved in {path}; undo it with `{undo}`.")


@app.command()
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
    scale_in_cooldown: Annotated[int, typer.Option(help="Seconds.")] = 300,
    scale_out_cooldown: Annotated[int, typer.Option(help="Seconds.")] = 300,
    disable_scale_in: Annotated[
        bool, typer.Option("--disable-scale-in", help="The policy never scales in.")
    ] = False,
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
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes and the aws commands; apply none.")
    ] = False,
    state_file: StateFileOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    aws_endpoint_url: AwsUrlOpt = None,
    yes: YesOpt = False,
) -> None:
    """Apply the target-tracking policy with Application Auto Scaling: check, show the
    changes, save what was there, apply, read back (--dry-run: show the aws commands)."""
    if run_dir is None and endpoint is None and inference_component is None:
        raise ConfigError("nothing to apply to", "pass a run directory, or --endpoint NAME "
                          "with --target-value")  # fmt: skip
    request = PolicyRequest(kind, metric, endpoint, variant, inference_component, target_value,
                            min_capacity, max_capacity, policy_name, scale_in_cooldown,
                            scale_out_cooldown, disable_scale_in, scale_from_zero, peak_rps,
                            force)  # fmt: skip
    _apply(run_dir, request, dry_run=dry_run, state_file=state_file, region=region,
           profile=profile, aws_endpoint_url=aws_endpoint_url, yes=yes)  # fmt: skip


@app.command()
def rollback(
    run_dir: Annotated[
        Path | None, typer.Argument(help="The run directory the policy was applied from.")
    ] = None,
    state_file: StateFileOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes and the aws commands; make none.")
    ] = False,
    region: Annotated[str | None, typer.Option(help="AWS region [the saved state's].")] = None,
    profile: ProfileOpt = None,
    aws_endpoint_url: AwsUrlOpt = None,
    yes: YesOpt = False,
) -> None:
    """Restore the autoscaling state saved by the last `apply` (one apply per rollback),
    down to "there was no policy" (deregister)."""
    from recommender.apply import last_saved, prepare_rollback, rollback_prepared
    from recommender.aws import AwsClient
    from recommender.policy import format_changes, format_commands, format_state

    path = _state_path(run_dir, state_file)
    entry, _ = last_saved(path)
    aws = AwsClient.create(region or entry.get("region"), profile, aws_endpoint_url)
    prepared = prepare_rollback(aws, path)
    echo(f"Restoring {prepared.saved.scope.resource_id} as it was at {prepared.saved_at} "
         f"(saved in {path})")  # fmt: skip
    echo(format_changes(prepared.changes, "the saved state").rstrip())
    if dry_run:
        if prepared.calls:
            echo("\nDry run: nothing was changed. These commands restore it:\n")
            echo(format_commands(prepared.calls).rstrip())
        return
    if prepared.calls:
        _confirm("Roll back?", yes)
    state = rollback_prepared(aws, prepared)
    echo("\nRolled back. Read back:")
    echo(format_state(state).rstrip())
    if prepared.remaining:
        echo(f"{prepared.remaining} earlier saved state(s) remain in {path}: roll back again "
             "to go further back.")  # fmt: skip


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
