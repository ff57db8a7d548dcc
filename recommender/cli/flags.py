"""Flags several commands share, declared once: `Annotated` aliases for single flags, and
flag groups (functions whose parameters are the flags and whose result is one options
object) that `flag_groups` splices into each command that takes them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR
from recommender.bounds import check_port
from recommender.cli.live import LiveView
from recommender.options import AwsAccess, RunOptions
from recommender.traffic import TrafficSpec


class Model(str, Enum):
    sklearn = "sklearn"
    sleep = "sleep"
    llm = "llm"


class TokenFormat(str, Enum):
    auto = "auto"
    jsonl = "jsonl"
    sse = "sse"


class Template(str, Enum):
    tgi = "tgi"
    messages = "messages"


class Arrivals(str, Enum):
    uniform = "uniform"
    poisson = "poisson"


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
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No live status line; the stage results only.")
]
PrometheusPortOpt = Annotated[
    int | None,
    typer.Option(help="Serve the run's live metrics for Prometheus on 127.0.0.1:PORT/metrics "
                 "(extra `metrics`)."),  # fmt: skip
]


def view_flags(quiet: QuietOpt = False, prometheus_port: PrometheusPortOpt = None) -> LiveView:
    """How `loadtest`, `run` and `demo` show a running test: the live line, the metrics."""
    # Checked here, with the other flags: the exporter binds only once the test starts.
    check_port("--prometheus-port", prometheus_port, allow_zero=True, hint="0 picks a free one")
    return LiveView(quiet=quiet, prometheus_port=prometheus_port)


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (progress: stderr).")
]
StateFileOpt = Annotated[
    Path | None,
    typer.Option(help="The saved state before each change [RUN_DIR/autoscaling_state.json, "
                 "else ./autoscaling_state.json]."),  # fmt: skip
]


Command = Callable[..., None]


def flag_groups(**groups: Callable[..., Any]) -> Callable[[Command], Command]:
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


def run_options(
    url: Annotated[
        str | None, typer.Option(help="Invocation URL, e.g. http://host:8080/invocations.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="SageMaker endpoint name (signed InvokeEndpoint).")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="Production variant to size.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="variant or serverless: what the variant must be [as described]."),
    ] = None,
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
    inference_component: Annotated[
        str | None, typer.Option(help="Inference component on --endpoint: capacity per copy.")
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
    control: Annotated[
        str, typer.Option(help="What a stage sets: rate (arrivals/s, open loop) or "
                          "concurrency (requests in flight, closed loop).")
    ] = "rate",
    start_concurrency: Annotated[
        int, typer.Option(help="--control concurrency: requests in flight at the start.")
    ] = 1,
    max_concurrency: Annotated[
        int | None, typer.Option(help="--control concurrency: the most requests in flight.")
    ] = None,
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
    probe: Annotated[
        bool, typer.Option(help="Adaptive: a few seconds at --max-rps first, to find the ceiling.")
    ] = True,
    early_stop: Annotated[
        bool, typer.Option(help="Adaptive: end a stage at an interim look once clearly judged.")
    ] = True,
    arrivals: Annotated[
        Arrivals | None,
        typer.Option(help="poisson: at random, as many clients send [default]; uniform: "
                     "1/rate apart."),
    ] = None,
    users: Annotated[int, typer.Option(help="Locust users; 0 sizes from the rate.")] = 0,
    payload: Annotated[
        Path | None, typer.Option(help="JSON lines, CSV rows, or a directory of bodies.")
    ] = None,
    content_type: Annotated[str | None, typer.Option(help="Overrides the payload's.")] = None,
    accept: Annotated[str | None, typer.Option(help="Accept header.")] = None,
    header: Annotated[list[str], typer.Option(help='Extra header "Name: value".')] = [],  # noqa: B006
    locustfile: Annotated[Path | None, typer.Option(help="Your own locustfile.")] = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Read the answer as it streams (LLMs): TTFT, ITL, "
                           "tokens; on an endpoint, InvokeEndpointWithResponseStream.")
    ] = False,
    token_format: Annotated[
        TokenFormat, typer.Option(help="--stream: count tokens per JSON line or SSE data: line.")
    ] = TokenFormat.auto,
    template: Annotated[
        Template | None, typer.Option(help="Payload lines are prompts, rendered as TGI/LMI "
                                      "(inputs + parameters) or OpenAI-style messages.")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="--template: output tokens to ask for, unless a line says.")
    ] = None,
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
        str,
        typer.Option(help="With --master: the address it listens on for workers. Locust's "
                     "protocol has no authentication or encryption (workers get the request "
                     "headers): 0.0.0.0 only on a private network or security group, or "
                     "keep 127.0.0.1 and reach it through an SSH tunnel."),
    ] = "127.0.0.1",
    master_port: Annotated[int, typer.Option(help="With --master: its port.")] = 5557,
    keep_requests: Annotated[
        bool, typer.Option("--keep-requests", help="Also write every request as Parquet rows.")
    ] = False,
    web_ui: Annotated[
        bool, typer.Option("--web-ui", help="Locust's web UI on 127.0.0.1 while the run goes.")
    ] = False,
    web_port: Annotated[int, typer.Option(help="With --web-ui: its port.")] = 8089,
    apply_policy: Annotated[
        bool, typer.Option("--apply", help="run: then apply the recommended policy.")
    ] = False,
    min_capacity: Annotated[int | None, typer.Option(help="--apply: MinCapacity.")] = None,
    max_capacity: Annotated[int | None, typer.Option(help="--apply: MaxCapacity.")] = None,
    input_s3: Annotated[
        str | None, typer.Option(help="Async endpoint: S3 prefix for the request inputs "
                                 "(s3://bucket/prefix; removed after the run).")
    ] = None,
    keep_inputs: Annotated[
        bool, typer.Option("--keep-inputs", help="Async: keep the inputs put in S3.")
    ] = False,
    keep_outputs: Annotated[
        bool, typer.Option("--keep-outputs", help="Async: keep the results the requests wrote.")
    ] = False,
    completion_timeout: Annotated[
        float, typer.Option(help="Async: a request not done after this many s is an error.")
    ] = 900.0,
    poll_interval: Annotated[
        float, typer.Option(help="Async: seconds between looks at the results in S3.")
    ] = 0.5,
) -> RunOptions:
    """The flags of `loadtest` and `run`, declared once (see `flag_groups`)."""
    return RunOptions(
        url=url, endpoint=endpoint, variant=variant, kind=kind, region=region, profile=profile,
        endpoint_url=endpoint_url, aws_endpoint_url=aws_endpoint_url, name=name,
        instances=instances, payload=payload, content_type=content_type, accept=accept,
        header=tuple(header), custom_attributes=custom_attributes,
        target_variant=target_variant, inference_component=inference_component,
        control=control, start_concurrency=start_concurrency,
        max_concurrency=max_concurrency, locustfile=locustfile, slo=tuple(slo),
        stream=stream, token_format=token_format.value,
        template=None if template is None else template.value, max_new_tokens=max_new_tokens,
        max_error_rate=max_error_rate, search=search.value, plan=plan, start_rps=start_rps,
        max_rps=max_rps, stages=stages, stage_seconds=stage_seconds,
        warmup_seconds=warmup_seconds, precision=precision, max_duration=max_duration,
        max_requests=max_requests, abort_error_rate=abort_error_rate,
        abort_latency=abort_latency, probe=probe, early_stop=early_stop,
        arrivals=arrivals.value if arrivals else None, users=users, seed=seed,
        workers=workers, master=master, expect_workers=expect_workers,
        master_bind_host=master_bind_host, master_port=master_port,
        keep_requests=keep_requests, web_ui=web_ui, web_port=web_port,
        cloudwatch_period=cloudwatch_period,
        cloudwatch_wait=cloudwatch_wait, out=out, safety_factor=safety_factor,
        apply=apply_policy, min_capacity=min_capacity, max_capacity=max_capacity,
        input_s3=input_s3, keep_inputs=keep_inputs, keep_outputs=keep_outputs,
        completion_timeout=completion_timeout, poll_interval=poll_interval,
    )  # fmt: skip


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
ProvisionOpt = Annotated[
    int | None, typer.Option(help="Minutes a new instance takes to serve [the run's "
                             "calibration.json (recommender verify), else 6].")  # fmt: skip
]
BudgetOpt = Annotated[int, typer.Option(help="SLO-violating minutes auto may allow.")]

NO_TRAFFIC = TrafficSpec()  # a placeholder default: `flag_groups` passes the real one


def traffic_flags(
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

RunDirArg = Annotated[Path, typer.Argument(help="A run directory.")]

# Re-judging a run: `analyze`, `report` and `simulate` take the run's SLO, or these instead.
SloOpt = Annotated[list[str] | None, typer.Option(help="Override the run's SLO.")]
MaxErrorRateOpt = Annotated[float | None, typer.Option(help="Override the run's.")]



DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show the changes and the aws commands; change nothing.")
]
NO_ACCESS = AwsAccess()  # a placeholder default: `flag_groups` passes the real one


def aws_flags(
    region: RegionOpt = None, profile: ProfileOpt = None, aws_endpoint_url: AwsUrlOpt = None
) -> AwsAccess:
    """Where `apply` and `rollback` call AWS."""
    return AwsAccess(region=region, profile=profile, endpoint_url=aws_endpoint_url)


