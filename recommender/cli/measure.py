"""Commands that measure: the local model server, the load test (`loadtest`, `run`), a
worker for distributed mode, CloudWatch collection, and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.app import app, asks, echo
from recommender.cli.flags import (
    AwsUrlOpt,
    JsonOpt,
    Model,
    ProfileOpt,
    YesOpt,
    flag_groups,
    run_options,
    view_flags,
)
from recommender.cli.live import LiveView
from recommender.errors import ConfigError, ExitCode
from recommender.options import AwsAccess, RunOptions
from recommender.plan import DEFAULT_VARIANT

NO_VIEW = LiveView()  # a placeholder default: `flag_groups` passes the real one


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8080,
    instances: Annotated[int, typer.Option(help="Worker processes, one per 'instance'.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Requests one instance serves at once.")] = 4,
    service_time_ms: Annotated[float, typer.Option(help="Time a request holds a slot.")] = 20.0,
    service_time_dist: Annotated[
        str, typer.Option(help="det (every request S), exp or lognormal:CV (drawn, mean S).")
    ] = "det",
    seed: Annotated[
        int | None, typer.Option(help="Seed of the drawn service times (default: fresh).")
    ] = None,
    model: Annotated[
        Model, typer.Option(help="sklearn (iris classifier), sleep, or llm (streams tokens).")
    ] = Model.sklearn,
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
    async_endpoint: Annotated[
        bool, typer.Option("--async", help="An asynchronous endpoint: InvokeEndpointAsync, "
                           "inputs and results in S3 (needs --endpoint-name, --output-s3).")
    ] = False,
    output_s3: Annotated[
        str | None, typer.Option(help="--async: S3OutputPath, s3://bucket/prefix.")
    ] = None,
    failure_s3: Annotated[
        str | None, typer.Option(help="--async: S3FailurePath, s3://bucket/prefix.")
    ] = None,
    max_batch: Annotated[int, typer.Option(help="llm: sequences decoded at once (B).")] = 16,
    step_ms: Annotated[float, typer.Option(help="llm: one decode step, one sequence.")] = 10.0,
    step_growth: Annotated[
        float, typer.Option(help="llm: step time x (1 + this x (running - 1)).")
    ] = 0.02,
    prefill_ms_per_token: Annotated[
        float, typer.Option(help="llm: prompt time per input token.")
    ] = 0.1,
    max_new_tokens: Annotated[
        int, typer.Option(help="llm: output tokens when the request does not say.")
    ] = 64,
    serverless: Annotated[
        bool, typer.Option(help="Play a serverless variant: executions, cold starts, throttling.")
    ] = False,
    max_concurrency: Annotated[int, typer.Option(help="--serverless: MaxConcurrency.")] = 8,
    provisioned_concurrency: Annotated[
        int, typer.Option(help="--serverless: ProvisionedConcurrency (always warm).")
    ] = 0,
    cold_start_ms: Annotated[
        float, typer.Option(help="--serverless: what a cold execution adds (ModelSetupTime).")
    ] = 500.0,
    idle_seconds: Annotated[
        float, typer.Option(help="--serverless: idle seconds after which an execution is cold.")
    ] = 30.0,
    memory_mb: Annotated[int, typer.Option(help="--serverless: MemorySizeInMB.")] = 2048,
    fault_control: Annotated[
        bool, typer.Option(help="Serve /faults on loopback: inject failures on cue.")
    ] = False,
    keepalive_s: Annotated[
        float | None, typer.Option(help="Close keep-alive connections idle this long (s), as "
                                   "real servers do (default: about an hour).")
    ] = None,
    overlap: Annotated[
        float, typer.Option(help="a: a request's slot time x (1 + a x (busy - 1) / C), busy "
                            "counting the slots held at its start, its own included; the "
                            "truth (recommender.queueing) applies the same rule.")
    ] = 0.0,
) -> None:
    """Run a local SageMaker-contract model server (GET /ping, POST /invocations; with
    --async POST /endpoints/E/async-invocations; with
    --model llm also POST /endpoints/E/invocations-response-stream).

    Like a third-party model server it finishes requests its client abandoned and has a
    1024-deep accept queue; --keepalive-s closes idle keep-alive connections and --overlap
    makes the tail grow with the requests in flight."""
    from recommender.local.llm import LlmParams
    from recommender.local.publisher import PublishConfig, check_period
    from recommender.local.server import ServerConfig, validate
    from recommender.local.server import serve as run_server
    from recommender.local.serverless import ServerlessEmulation

    # The llm and --serverless flags are checked whatever the model and mode: a bad value is
    # refused, never silently unused.
    llm = LlmParams(max_batch, step_ms, step_growth, prefill_ms_per_token, max_new_tokens)
    emulated = ServerlessEmulation(max_concurrency, provisioned_concurrency, cold_start_ms,
                                   idle_seconds, memory_mb).check()  # fmt: skip
    check_period(metrics_period)  # read only with --publish-metrics
    if async_endpoint:
        from recommender.local.asyncserver import AsyncServerConfig, serve_async

        server = ServerConfig(host, port, instances, concurrency, service_time_ms, model.value,
                              max_queue, llm=llm, service_time_dist=service_time_dist,
                              seed=seed)  # fmt: skip
        validate(server)
        if service_time_dist != "det":
            raise ConfigError("--service-time-dist must be det with --async",
                              "the asynchronous endpoint holds each request exactly S")
        if not output_s3:
            raise ConfigError("--async needs --output-s3", "e.g. --output-s3 s3://bucket/out")
        aconfig = AsyncServerConfig(server, endpoint_name or "", output_s3, failure_s3,
                                    variant, region or "us-east-1", aws_endpoint_url,
                                    metrics_period, publish_metrics).check()  # fmt: skip

        def ready_async(url: str) -> None:
            echo(f"Listening on {url} (asynchronous endpoint {aconfig.endpoint}, capacity "
                 f"{aconfig.capacity_rps:g} requests/s)")  # fmt: skip

        serve_async(aconfig, ready_async)
        return
    publish = (PublishConfig.from_flags(endpoint_name, variant, metrics_period, region,
                                        aws_endpoint_url) if publish_metrics else None)  # fmt: skip
    emulation = emulated if serverless else None
    config = ServerConfig(host, port, instances, concurrency, service_time_ms, model.value,
                          max_queue, publish, serverless=emulation, llm=llm,
                          fault_control=fault_control, service_time_dist=service_time_dist,
                          seed=seed, keepalive_s=keepalive_s, overlap=overlap)  # fmt: skip
    validate(config)

    def ready(url: str) -> None:
        if config.model == "llm":
            echo(f"Listening on {url} (llm: batch {llm.max_batch}, step {llm.step_ms:g} ms "
                 f"x (1 + {llm.growth:g} x (running - 1)), prefill "
                 f"{llm.prefill_ms_per_token:g} ms/token)")  # fmt: skip
            return
        what = (f"serverless: MaxConcurrency {max_concurrency}, ProvisionedConcurrency "
                f"{provisioned_concurrency}, " if serverless else "")  # fmt: skip
        law = ("" if service_time_dist == "det" else
               f", service times {service_time_dist} around {service_time_ms:g} ms")  # fmt: skip
        grown = ("" if not overlap or serverless else
                 f", slots held up to {config.stretch:g} x as long with every one busy "
                 f"(--overlap {overlap:g})")  # fmt: skip
        echo(f"Listening on {url} ({what}capacity {config.capacity_rps:g} requests/s{law}"
             f"{grown})")

    run_server(config, ready)


@app.command("loadtest")
@flag_groups(options=run_options, view=view_flags)
def loadtest(options: RunOptions, yes: YesOpt = False, view: LiveView = NO_VIEW) -> None:
    """Drive a staged, open-loop load ramp with Locust; write a run directory."""
    from recommender import pipeline

    with view:
        lt = pipeline.loadtest(options, echo=view.echo, confirm=asks(yes), watch=view.update)
    t = lt.totals
    again = (f" ({t['reconnects']} sent again after a kept-alive connection closed)"
             if t.get("reconnects") else "")  # fmt: skip
    echo(f"{lt.status}: {t['requests']} requests, {t['errors']} errors{again} -> {lt.run_dir}")
    if lt.status == "interrupted":
        raise typer.Exit(ExitCode.INTERRUPTED)


@app.command("run")
@flag_groups(options=run_options, view=view_flags)
def run(
    options: RunOptions, yes: YesOpt = False, view: LiveView = NO_VIEW, json_output: JsonOpt = False
) -> None:
    """loadtest + analyze + reports (html, md) in one command."""
    from recommender import pipeline
    from recommender.report.result import format_json, result_document

    view.err = json_output  # with --json, stdout holds the result alone; progress: stderr
    with view:
        result = pipeline.run(options, echo=view.echo, confirm=asks(yes), watch=view.update)
    if json_output:
        applied = result.applied.value if result.applied else None
        echo(format_json(result_document(
            "run", result.analysis, result.loadtest.run_dir, exit_code=result.exit_code,
            status=result.loadtest.status, applied=applied)).rstrip())  # fmt: skip
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
    from recommender.loadgen.runner import run_worker

    raise typer.Exit(run_worker(master_host, master_port, locustfile, echo))


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


@app.command()
@flag_groups(view=view_flags)
def demo(
    out: Annotated[Path, typer.Option(help="Where the run directory goes.")] = Path("reports"),
    yes: YesOpt = False,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Sweep three instance types instead (~3 min).")
    ] = False,
    view: LiveView = NO_VIEW,
    async_endpoint: Annotated[
        bool, typer.Option("--async", help="Size an emulated asynchronous endpoint instead "
                           "(capacity 8 req/s, SLO p95<=5s on completion).")
    ] = False,
    llm: Annotated[
        bool, typer.Option("--llm", help="An LLM-like server streaming tokens, deployed as "
                           "an inference component and sized on requests in flight within "
                           "TTFT, ITL and end-to-end latency (~1.5 min).")
    ] = False,
    serverless: Annotated[
        bool, typer.Option(help="Size an emulated serverless variant (MaxConcurrency 8) instead.")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="measure -> apply -> verify -> calibrate -> "
                           "simulate on a scaling emulated endpoint (~2 min).")  # fmt: skip
    ] = False,
) -> None:
    """Start a local model server (capacity 200 req/s), size it, and print the result;
    --sweep: deploy three instance types in the AWS emulator, rank them, name the cheapest."""
    from recommender.local.demo import DEMO_SLO, run_demo
    from recommender.report.render import format_summary

    _ = yes  # the demo only talks to its own loopback server: nothing to confirm
    if sum((sweep, llm, serverless, verify, async_endpoint)) > 1:
        raise ConfigError("--sweep, --llm, --serverless, --async and --verify are different "
                          "demos", "pick one")  # fmt: skip
    if verify:
        _demo_verify(out, view)
        return
    if async_endpoint:
        from recommender.local.asyncdemo import run_async_demo

        with view:
            got = run_async_demo(out, view.echo)  # prints the summary, as `run` does
        a = got.analysis
        mu, rec = a.capacity.rps_per_instance, a.recommendation
        if mu:
            echo(f"\nTrue throughput of the demo endpoint: {got.true_rps_per_instance:g} "
                 f"requests/s per instance; estimate {mu:.2f} "
                 f"({mu / got.true_rps_per_instance:.0%})")
        if rec:
            at_one = rec.target_value if rec.safety_factor == 1 else None
            echo(f"True backlog per instance at the SLO's edge: {got.true_target:.1f} "
                 f"(the target at safety factor 1{'' if at_one is None else f': {at_one:.1f}'})")
        echo(f"Run directory: {got.result.loadtest.run_dir}")
        if a.exit_code:
            raise typer.Exit(a.exit_code)
        return
    if sweep:
        _demo_sweep(out, view)
        return
    with view:
        result = run_demo(out, view.echo, view.update, llm=llm, serverless=serverless)
    a = result.analysis
    echo("")
    echo(format_summary(a).rstrip())
    c = a.concurrency
    littles = a.serverless.littles_rps_per_concurrency if a.serverless else None
    if result.true_concurrency is not None and c is not None and c.per_instance is not None:
        # demo --llm searched over requests in flight: its truth is a concurrency.
        bracket = ("-".join(f"{x:g}" for x in c.interval_per_instance)
                   if c.interval_per_instance else c.method)  # fmt: skip
        echo(f"\nTrue concurrency of the LLM server within its SLO: {result.true_concurrency} "
             f"in flight per copy ({result.true_concurrency_rps or 0:.1f} rps there); found "
             f"{c.per_instance:.2f} (bracket {bracket}), "
             f"{c.throughput_rps_per_instance or 0:.1f} rps there")  # fmt: skip
    elif littles and result.true_rps_per_concurrency:
        true = result.true_rps_per_concurrency
        echo(f"\nTrue throughput per concurrent execution: {true:g} rps (1000 / its service "
             f"time); Little's law estimate {littles:.1f} ({littles / true:.0%})")  # fmt: skip
    elif (estimate := a.capacity.rps_per_instance) is not None and estimate:
        sat = "" if result.saturation is None else f" (saturation {result.saturation:g} rps)"
        where = " on this machine" if result.truth_basis else ""
        echo(f"\nTrue capacity of the demo server within {DEMO_SLO} under {result.arrivals} "
             f"arrivals{where}: {result.true_capacity:.1f} rps{sat}; estimate {estimate:.1f} "
             f"({estimate / result.true_capacity:.0%})")  # fmt: skip
        if result.truth_basis:
            ideal = ("" if result.ideal_capacity is None else
                     f"; the ideal server's (every slot exactly its service time): "
                     f"{result.ideal_capacity:.1f} rps")  # fmt: skip
            echo(f"  how: the server timed at a trickle ({result.truth_basis}), then its queue "
                 f"simulated with those times{ideal}")  # fmt: skip
    echo(f"Run directory: {result.loadtest.run_dir}")
    if a.exit_code:
        raise typer.Exit(a.exit_code)




def _demo_verify(out: Path, view: LiveView) -> None:
    from recommender.local.demo import run_verify_demo
    from recommender.report.verify import format_verify_text

    result = run_verify_demo(out, view.echo)
    echo("")
    echo(format_verify_text(result.verify.data).rstrip())
    sim = result.calibrated
    if sim is not None:
        outs = [e for e in sim.events if e.kind == "out"]
        served = "-" if not outs else f"{outs[0].minute + 1 + sim.policy.provision_minutes}"
        rows = {r.what: r for r in result.verify.rows}
        seen, bad = rows["time until in service"].observed, rows["SLO-violating minutes"]
        echo(f"\nSimulated again with the calibration: instances in service from minute "
             f"{served} (observed {'-' if seen is None else f'{seen:g}'}); "
             f"{sim.totals.violating_minutes} SLO-violating minutes predicted (observed "
             f"{bad.observed or 0:g})")  # fmt: skip
    echo(f"\nRun directory: {result.run_dir} (verify.md, verify.html, calibration.json)")


def _demo_sweep(out: Path, view: LiveView) -> None:
    from recommender.local.demo import run_sweep_demo
    from recommender.report.sweep import format_sweep_text
    from recommender.sweep import load_sweep

    with view:
        result = run_sweep_demo(out, view.echo, view.update)
    s = result.sweep
    echo("")
    echo(format_sweep_text(load_sweep(s.sweep_dir)).rstrip())
    found = s.winner.instance_type if s.winner else "none"
    echo(f"\nKnown cheapest (true capacity and price): {result.known_cheapest}; the sweep "
         f"found: {found} ({'right' if found == result.known_cheapest else 'WRONG'})")
    echo(f"Sweep directory: {s.sweep_dir}")
    if s.exit_code:
        raise typer.Exit(s.exit_code)
