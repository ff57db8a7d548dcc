"""The commands' library side: measure, then analyse, then write the reports.

`loadtest` and `run` take the one options object the CLI parses (recommender.options),
check it, describe the endpoint, say what the test will cost, ask (`confirm`, which
answers False to stop: nothing is sent), then measure; `run` goes on to analyse, report
and, when asked, apply the policy.
`echo` is where progress goes: the library never prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recommender import runs
from recommender.analysis import Analysis, analyze_run
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR
from recommender.analysis.serverless import size_serverless
from recommender.apply import Outcome, apply, check_before_run
from recommender.aws import AwsClient
from recommender.bounds import check_number
from recommender.collect import CollectResult, collect_run
from recommender.errors import ConfigError, Declined, EndpointError, ExitCode, RecommenderError
from recommender.loadgen.runner import (
    LoadTestResult,
    LoadTestSpec,
    Watch,
    run_loadtest,
    split_url,
)
from recommender.loadgen.sigv4 import Credentials, runtime_url
from recommender.options import (
    INFERENCE_COMPONENT_HEADER,
    TARGET_VARIANT_HEADER,
    AwsAccess,
    RunOptions,
)
from recommender.plan import SearchSettings, Slo, Target, describe_cost, name_from_url, parse_slo
from recommender.policy import PolicyRequest
from recommender.report.render import format_html, format_markdown, format_summary
from recommender.sizing import Sizing, Traffic, size_for

REPORT_FORMATS = ("html", "md", "json")
CLOUDWATCH_GLOB = "*cloudwatch*.csv"


Echo = Callable[[str], None]
Confirm = Callable[[str], bool]  # asks; False stops before anything is sent or changed


@dataclass(frozen=True)
class PipelineResult:
    loadtest: LoadTestResult
    analysis: Analysis
    applied: Outcome | None = None  # run --apply: how applying the policy ended

    @property
    def exit_code(self) -> ExitCode:
        """130 after Ctrl-C (what was measured is kept), else the analysis' (0 with a
        recommendation), and 1 when the policy's change was declined."""
        if self.loadtest.status == "interrupted":
            return ExitCode.INTERRUPTED
        if self.analysis.exit_code == ExitCode.OK and self.applied is Outcome.DECLINED:
            return ExitCode.FAILED
        return self.analysis.exit_code


def loadtest(options: RunOptions, *, echo: Echo = print, confirm: Confirm | None = None,
             watch: Watch | None = None) -> LoadTestResult:  # fmt: skip
    """`recommender loadtest`: measure into a run directory (CloudWatch too on SageMaker)."""
    if options.apply:
        raise ConfigError("--apply is for `recommender run`",
                          "or apply a run later: recommender apply RUN_DIR")  # fmt: skip
    measured = _measure_async(options, echo, confirm)
    if measured is not None:
        return measured
    spec, cloudwatch = prepare(options, echo, confirm)
    return measure(spec, echo, cloudwatch, watch)


def _measure_async(options: RunOptions, echo: Echo, confirm: Confirm | None
                   ) -> LoadTestResult | None:  # fmt: skip
    """The load on an asynchronous endpoint (recommender.asyncrun); None for other targets."""
    from recommender.asyncrun import measure_async, prepare_async

    prepared = prepare_async(options, echo, confirm)
    if prepared is None:
        return None
    got = measure_async(prepared, echo)
    return LoadTestResult(got.run_dir, got.status, got.totals)


def run(options: RunOptions, *, echo: Echo = print, confirm: Confirm | None = None,
        watch: Watch | None = None) -> PipelineResult:  # fmt: skip
    """`recommender run`: measure, analyse, write the reports, and apply the policy when
    asked and the run gave a recommendation."""
    if options.apply:  # before any load is sent: a bad bound must not cost a whole test
        check_before_run(endpoint=options.endpoint, variant=options.variant,
                         min_capacity=options.min_capacity,
                         max_capacity=options.max_capacity)  # fmt: skip
    measured = _measure_async(options, echo, confirm)
    if measured is not None:
        result = PipelineResult(measured, analyze_dir(measured.run_dir, None,
                                                      options.safety_factor))
    else:
        spec, cloudwatch = prepare(options, echo, confirm)
        result = run_pipeline(spec, options.safety_factor, echo, cloudwatch, watch)
    echo("")
    echo(format_summary(result.analysis).rstrip())
    echo(f"\nRun directory: {result.loadtest.run_dir}")
    if not options.apply or result.exit_code:
        return result
    echo("")
    request = PolicyRequest(min_capacity=options.min_capacity,
                            max_capacity=options.max_capacity)  # fmt: skip
    outcome = apply(run_dir=result.loadtest.run_dir, request=request, access=options.aws,
                    echo=echo, confirm=confirm or (lambda _: True))  # fmt: skip
    return replace(result, applied=outcome)


def prepare(options: RunOptions, echo: Echo = print, confirm: Confirm | None = None
            ) -> tuple[LoadTestSpec, CloudWatchOptions | None]:  # fmt: skip
    """Check everything the flags say, and the endpoint, before a single request is sent;
    then say what the test costs and ask."""
    options.check_generator()
    slo = options.parse_slo()
    plan = options.load_plan(slo)
    headers = options.headers()
    cloudwatch = None
    credentials: Callable[[], Credentials] | None = None
    align = 1  # a container's run starts on any second
    if options.endpoint is not None:
        from recommender.metrics import default_period

        aws = AwsClient.connect(options.aws)
        target = sagemaker_target(aws, options.endpoint, options.variant, options.endpoint_url,
                                  kind=options.kind, name=options.name,
                                  instances=options.instances,
                                  content_type=options.content_type, accept=options.accept,
                                  headers=headers,
                                  inference_component=options.inference_component,
                                  stream=options.stream,
                                  token_format=options.token_format)  # fmt: skip

        def signing_credentials() -> Credentials:
            return Credentials(*aws.frozen_credentials())

        credentials = signing_credentials
        align = options.cloudwatch_period or default_period(options.stage_length)
        if isinstance(plan, SearchSettings):
            plan = replace(plan, period=align)
        cloudwatch = CloudWatchOptions(aws, align, options.cloudwatch_wait)
        if target.inference_component:
            echo(f"Inference component {target.inference_component}: InService on endpoint "
                 f"{options.endpoint}, variant {target.variant}, {target.instances} "
                 "copies (capacity is per copy)")  # fmt: skip
        else:
            echo(f"Endpoint {options.endpoint}: InService, {describe_capacity(target)}")
    else:
        assert options.url is not None  # RunOptions holds exactly one of url and endpoint
        split_url(options.url)
        target = Target(url=options.url, name=options.name or name_from_url(options.url),
                        instances=options.instances or 1, content_type=options.content_type,
                        accept=options.accept, headers=headers, stream=options.stream,
                        token_format=options.token_format)  # fmt: skip
    spec = LoadTestSpec(
        target=target,
        plan=plan,
        slo=slo,
        payload=options.payload,
        locustfile=options.locustfile,
        out=options.out,
        seed=options.seed,
        credentials=credentials,
        align_seconds=align,
        abort_error_rate=options.abort_error_rate,
        abort_latency_factor=options.abort_latency_factor(slo),
        arrivals=options.arrival_model,
        users=options.users,
        workers=options.workers,
        expect_workers=options.expect_workers,
        master_bind_host=options.master_bind_host if options.master else "127.0.0.1",
        master_port=options.master_port if options.master else 0,
        keep_requests=options.keep_requests,
        web_port=options.web_port if options.web_ui else None,
        template=options.template,
        max_new_tokens=options.max_new_tokens,
    )
    echo(describe_cost(plan, target.shown_url))
    if confirm is not None and not confirm("Start?"):
        raise Declined("the load test was not started", "answer yes, or pass --yes")
    return spec, cloudwatch


def slo_override(run_dir: Path, terms: Sequence[str] | None, max_error_rate: float | None
                 ) -> Slo | None:  # fmt: skip
    """The run's SLO with the terms or error budget given on the command line; None when
    neither is given (the run's own SLO is used)."""
    if not terms and max_error_rate is None:
        return None
    base = runs.load_run(run_dir).slo
    texts = terms or [str(t) for t in base.terms]
    return parse_slo(texts, base.max_error_rate if max_error_rate is None else max_error_rate)


def parse_formats(texts: Sequence[str]) -> list[str]:
    """`--format html,md` (repeatable, comma-separated) as a list of REPORT_FORMATS."""
    formats = [f.strip().lower() for text in texts for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in REPORT_FORMATS]
    if bad or not formats:
        raise ConfigError(f"unknown --format {(bad or [''])[0]!r}", "use html, md and/or json")
    return formats


def analyze_dir(
    run_dir: Path, slo: Slo | None, safety_factor: float, slo_source: str = "client"
) -> Analysis:
    """Analyse a run directory and write analysis.json, report.md and report.html into it."""
    return write_reports(run_dir, slo, safety_factor, slo_source=slo_source).analysis


@dataclass(frozen=True)
class ReportResult:
    analysis: Analysis
    sizing: Sizing | None
    written: list[Path]


def write_reports(
    run_dir: Path,
    slo: Slo | None = None,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
    traffic: Traffic | None = None,
    formats: Sequence[str] = REPORT_FORMATS,
    extra: Mapping[str, Any] | None = None,
    slo_source: str = "client",
) -> ReportResult:
    """Analyse a run directory and write the reports asked for ("json" is analysis.json).

    `extra`: more top-level keys for analysis.json (e.g. `safety_factor_choice`).
    """
    traffic = (traffic or Traffic()).check()
    run = runs.load_run(run_dir)
    analysis = analyze_run(run, slo, safety_factor, slo_source)
    target = run.meta.get("target") or {}
    rec = analysis.recommendation
    sizing = size_for(rec.target_value, traffic, target.get("instance_type")) if rec else None
    if analysis.serverless is not None:
        # Sized in provisioned concurrency, not instances (recommender.analysis.serverless).
        sizing = None
        if traffic.peak_rps is not None:
            z = size_serverless(analysis.serverless, analysis.slo, traffic.peak_rps,
                                traffic.min_rps)  # fmt: skip
            analysis = replace(analysis, serverless=replace(analysis.serverless, sizing=z))
    floor = traffic.min_capacity_floor
    written = []
    if "json" in formats:
        data = analysis.to_dict()
        if sizing is not None:
            data["sizing"] = sizing.to_dict()
        data.update(extra or {})
        runs.write_json(run_dir / runs.ANALYSIS_FILE, data)
        written.append(run_dir / runs.ANALYSIS_FILE)
    if "md" in formats:
        text = format_markdown(analysis, sizing, run.meta, floor)
        (run_dir / runs.REPORT_MD).write_text(text, encoding="utf-8")
        written.append(run_dir / runs.REPORT_MD)
    if "html" in formats:
        # CloudWatch data is optional (collected only against real or emulated endpoints);
        # the file run.json names comes first, then any other *cloudwatch*.csv.
        named = str((run.meta.get("cloudwatch") or {}).get("file") or runs.CLOUDWATCH_FILE)
        found = sorted(run_dir.glob(CLOUDWATCH_GLOB), key=lambda p: (p.name != named, p.name))
        cloudwatch = [(p.name, p.read_text(encoding="utf-8", errors="replace"))
                      for p in found if p.is_file()]  # fmt: skip
        sim_path = run_dir / runs.SIMULATION_FILE  # written by `recommender simulate`
        simulation = json.loads(sim_path.read_text()) if sim_path.is_file() else None
        html = format_html(analysis, run.meta, run.seconds, sizing, cloudwatch, floor,
                           simulation)  # fmt: skip
        (run_dir / runs.REPORT_HTML).write_text(html, encoding="utf-8")
        written.append(run_dir / runs.REPORT_HTML)
    return ReportResult(analysis, sizing, written)


def run_pipeline(
    spec: LoadTestSpec,
    safety_factor: float,
    echo: Callable[[str], None] = print,
    cloudwatch: CloudWatchOptions | None = None,
    watch: Watch | None = None,
) -> PipelineResult:
    result = measure(spec, echo, cloudwatch, watch)
    return PipelineResult(result, analyze_dir(result.run_dir, spec.slo, safety_factor))


@dataclass(frozen=True)
class CloudWatchOptions:
    """Where and how to collect a SageMaker endpoint's metrics after the load."""

    aws: AwsClient
    period: int | None = None
    wait_seconds: float | None = None


def measure(
    spec: LoadTestSpec,
    echo: Callable[[str], None] = print,
    cloudwatch: CloudWatchOptions | None = None,
    watch: Watch | None = None,
) -> LoadTestResult:
    """The load test, then (for a SageMaker endpoint) its CloudWatch metrics.

    A failed collection does not lose the run: it is reported, and `recommender collect`
    can fetch the metrics later (they arrive late anyway).
    """
    result = run_loadtest(spec, echo, watch)
    if cloudwatch is not None and spec.target.endpoint and result.status != "interrupted":
        echo("Collecting CloudWatch metrics for the test window...")
        try:
            got = collect_run(result.run_dir, cloudwatch.aws, cloudwatch.period,
                              cloudwatch.wait_seconds, echo)  # fmt: skip
            echo(f"  {got.rows} datapoints at {got.period}s -> {got.path.name}")
            for w in got.warnings:
                echo(f"  warning: {w}")
        except RecommenderError as exc:
            echo(f"  warning: CloudWatch collection failed: {exc.one_line()}; "
                 f"run `recommender collect {result.run_dir}` later")  # fmt: skip
    return result


def collect(
    run_dir: Path,
    *,
    period: int | None = None,
    wait_seconds: float | None = None,
    access: AwsAccess,
    echo: Echo = print,
) -> CollectResult:
    """`recommender collect`: the run's CloudWatch metrics (again), in the run's region."""
    check_number("--period", period, low=1, hint="seconds, e.g. 60")
    check_number("--wait", wait_seconds, low=0, hint="seconds")
    region = (runs.load_run(run_dir).meta.get("target") or {}).get("region")
    return collect_run(run_dir, AwsClient.connect(access, region), period, wait_seconds, echo)


def describe_capacity(target: Target) -> str:
    """What serves the variant, for the terminal."""
    if target.serverless:
        c = target.serverless
        return (f"serverless variant {target.variant} (MaxConcurrency {c.get('MaxConcurrency')}, "
                f"ProvisionedConcurrency {c.get('ProvisionedConcurrency', 0)}, "
                f"{c.get('MemorySizeInMB')} MB): capacity per unit of concurrency")  # fmt: skip
    kind = target.instance_type or "unknown type"
    return f"variant {target.variant}, {target.instances} x {kind}"


def sagemaker_target(
    aws: AwsClient,
    endpoint: str,
    variant: str | None,
    endpoint_url: str | None,
    kind: str | None = None,
    **options: Any,
) -> Target:
    """Check the endpoint (exists, InService, has the variant, is of the `kind` asked) and
    describe what serves it; with `inference_component`, check that too (exists, InService,
    on this endpoint) and count its copies instead of the instances."""
    component = options.pop("inference_component", None)
    info = aws.describe_endpoint(endpoint)
    if info.status != "InService":
        raise EndpointError(
            f"endpoint {endpoint} is {info.status}, not InService",
            "wait until it is InService (aws sagemaker wait endpoint-in-service)",
        )
    copies = None
    if component is not None:
        ic = aws.describe_inference_component(component)
        if ic.endpoint != endpoint:
            raise EndpointError(f"inference component {component} belongs to endpoint "
                                f"{ic.endpoint}, not {endpoint}",
                                "check --inference-component and --endpoint")  # fmt: skip
        if ic.status != "InService":
            raise EndpointError(f"inference component {component} is {ic.status}, not "
                                "InService", "wait until it is InService")  # fmt: skip
        if not ic.copies:
            raise EndpointError(f"inference component {component} has no copy running",
                                "set its copy count to 1 or more before the test")  # fmt: skip
        variant, copies = variant or ic.variant, ic.copies
    v = info.variant(variant)
    if kind == "serverless" and v.serverless is None:
        raise ConfigError(f"variant {v.name} of {endpoint} is not serverless (it has "
                          f"{v.current_instance_count or '?'} x {v.instance_type or 'instances'})",
                          "leave out --kind serverless, or pass --kind variant")  # fmt: skip
    if kind == "variant" and v.serverless is not None:
        raise ConfigError(f"variant {v.name} of {endpoint} is serverless",
                          "pass --kind serverless, or leave --kind out")  # fmt: skip
    if v.serverless is not None:
        if options.get("instances"):
            raise ConfigError("--instances is for instance-backed variants",
                              f"{v.name} is serverless: its capacity is its MaxConcurrency")
        # Capacity per unit of concurrency: the analysis divides by MaxConcurrency.
        options["instances"] = int(v.serverless.get("MaxConcurrency") or 1)
        options["serverless"] = dict(v.serverless)
    base = (endpoint_url or runtime_url(aws.region, endpoint).split("/endpoints/")[0]).rstrip("/")
    headers = dict(options.pop("headers", None) or {})
    if variant is not None and len(info.variants) > 1:
        # Without it, SageMaker spreads requests over all variants by their weights.
        headers.setdefault(TARGET_VARIANT_HEADER, v.name)
    if component is not None:
        # SageMaker routes a call to a component by this header: a target measured per
        # copy sends it on every call, whoever built the target (the CLI's flags add it too).
        headers.setdefault(INFERENCE_COMPONENT_HEADER, component)
    # InvokeEndpointWithResponseStream for a streamed answer, InvokeEndpoint otherwise.
    operation = "invocations-response-stream" if options.get("stream") else "invocations"
    return Target(
        url=f"{base}/endpoints/{endpoint}/{operation}",
        name=options.pop("name", None) or endpoint,
        instances=options.pop("instances", None) or copies or v.current_instance_count or 1,
        instance_type=v.instance_type,
        headers=headers,
        endpoint=endpoint,
        variant=v.name,
        region=aws.region,
        profile=aws.session.profile_name if aws.session.profile_name != "default" else None,
        inference_component=component,
        **options,
    )
