"""The `recommender` command. Thin: parse, call one library function, render, exit code.

Every RecommenderError and every usage error ends as one line on stderr,
`Error: <what> (<how to fix>)`, and a non-zero exit code; never a traceback.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

# Typer (>= 0.29) vendors click; its usage errors are only importable from there.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from recommender import __version__
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR
from recommender.errors import ConfigError, RecommenderError
from recommender.plan import RampPlan, Target, linear_ramp, load_plan_file, parse_slo

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
) -> None:
    """Run a local SageMaker-contract model server (GET /ping, POST /invocations)."""
    from recommender.local.server import ServerConfig, validate
    from recommender.local.server import serve as run_server

    config = ServerConfig(host, port, instances, concurrency, service_time_ms, model.value,
                          max_queue)  # fmt: skip
    validate(config)

    def ready(url: str) -> None:
        echo(f"Listening on {url} (capacity {config.capacity_rps:g} requests/s)")

    run_server(config, ready)


def _plan(
    plan_file: Path | None,
    start_rps: float,
    max_rps: float | None,
    stages: int,
    stage_seconds: float,
    warmup_seconds: float | None,
    arrivals: Arrivals,
    users: int,
) -> RampPlan:
    if plan_file is not None:
        return load_plan_file(plan_file)
    if max_rps is None:
        raise ConfigError("no ramp given", "pass --max-rps (and --start-rps) or --plan FILE")
    return linear_ramp(start_rps, max_rps, stages, stage_seconds, warmup_seconds,
                       arrivals.value, users)  # fmt: skip


# One function serves `loadtest` and `run`; `run` also analyses and writes report.md.
def loadtest_command(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="Invocation URL, e.g. http://host:8080/invocations.")],
    slo: Annotated[
        list[str], typer.Option(help='Latency objective, e.g. "p95<=300ms"; repeatable.')
    ] = ["p95<=300ms"],  # noqa: B006 - typer reads the default, never mutates it
    max_error_rate: Annotated[float, typer.Option(help="Errors allowed per stage.")] = 0.01,
    start_rps: Annotated[float, typer.Option(help="Offered rate of the first stage.")] = 10.0,
    max_rps: Annotated[float | None, typer.Option(help="Offered rate of the last stage.")] = None,
    stages: Annotated[int, typer.Option(help="Number of stages, evenly spaced.")] = 8,
    stage_seconds: Annotated[float, typer.Option(help="Length of each stage.")] = 30.0,
    warmup_seconds: Annotated[
        float | None, typer.Option(help="Seconds left out at each stage start [20%, <=5].")
    ] = None,
    plan: Annotated[Path | None, typer.Option(help="Plan file (YAML/JSON) instead.")] = None,
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
    instances: Annotated[int, typer.Option(help="Instances serving the endpoint.")] = 1,
    out: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("reports"),
    safety_factor: Annotated[
        float, typer.Option(help="Share of capacity to target (run only).")
    ] = DEFAULT_SAFETY_FACTOR,
    seed: Annotated[int | None, typer.Option(help="Seed for Poisson arrivals.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Skip the confirmation.")] = False,
) -> None:
    from recommender.loadgen.runner import LoadTestSpec, split_url

    split_url(url)
    if instances < 1:
        raise ConfigError(f"--instances must be >= 1 (got {instances})")
    the_slo = parse_slo(slo, max_error_rate)
    the_plan = _plan(plan, start_rps, max_rps, stages, stage_seconds, warmup_seconds,
                     arrivals, users)  # fmt: skip
    headers = {}
    for h in header:
        key, sep, value = h.partition(":")
        if not sep or not key.strip():
            raise ConfigError(f"bad --header {h!r}", 'write it as "Name: value"')
        headers[key.strip()] = value.strip()
    target = Target(
        url=url,
        name=name or _name_from_url(url),
        instances=instances,
        content_type=content_type,
        accept=accept,
        headers=headers,
    )
    spec = LoadTestSpec(target, the_plan, the_slo, payload, locustfile, out, seed)
    _confirm(
        f"Send up to {sum(s.rps * s.seconds for s in the_plan.stages):.0f} requests to {url} "
        f"over {the_plan.duration:.0f}s?",
        yes,
    )
    if ctx.info_name == "run":
        from recommender.pipeline import run_pipeline
        from recommender.report.render import format_summary

        result = run_pipeline(spec, safety_factor, echo)
        echo("")
        echo(format_summary(result.analysis).rstrip())
        echo(f"\nRun directory: {result.loadtest.run_dir}")
        if result.loadtest.status == "interrupted":
            raise typer.Exit(130)
        if result.analysis.recommendation is None:
            raise typer.Exit(1)
    else:
        from recommender.loadgen.runner import run_loadtest

        lt = run_loadtest(spec, echo)
        t = lt.totals
        echo(f"{lt.status}: {t['requests']} requests, {t['errors']} errors -> {lt.run_dir}")
        if lt.status == "interrupted":
            raise typer.Exit(130)


def _name_from_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    segs = [p for p in parts.path.split("/") if p]
    if len(segs) >= 2 and segs[0] == "endpoints":
        return segs[1]
    return f"{parts.hostname}-{parts.port}" if parts.port else str(parts.hostname)


app.command(
    "loadtest", help="Drive a staged, open-loop load ramp with Locust; write a run directory."
)(loadtest_command)
app.command("run", help="loadtest + analyze + report.md in one command.")(loadtest_command)


@app.command()
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    slo: Annotated[list[str] | None, typer.Option(help="Override the run's SLO.")] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="Override the run's.")] = None,
    safety_factor: Annotated[float, typer.Option(help="Share of capacity to target.")] = (
        DEFAULT_SAFETY_FACTOR
    ),
) -> None:
    """Analyse a run directory: stage table, capacity per instance, target value."""
    from recommender import runs
    from recommender.pipeline import analyze_dir
    from recommender.report.render import format_summary

    the_slo = None
    if slo or max_error_rate is not None:
        base = runs.load_run(run_dir).slo
        texts = slo or [str(t) for t in base.terms]
        the_slo = parse_slo(
            texts, base.max_error_rate if max_error_rate is None else max_error_rate
        )
    analysis = analyze_dir(run_dir, the_slo, safety_factor)
    echo(format_summary(analysis).rstrip())
    if analysis.recommendation is None:
        raise typer.Exit(1)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the run directory goes.")] = Path("reports"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Skip the confirmation.")] = False,
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
