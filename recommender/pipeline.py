"""The commands' library side: measure, then analyse, then write the reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recommender import runs
from recommender.analysis import Analysis, analyze_run
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR
from recommender.aws import AwsClient
from recommender.collect import collect_run
from recommender.errors import EndpointError, RecommenderError
from recommender.loadgen.runner import LoadTestResult, LoadTestSpec, run_loadtest
from recommender.loadgen.sigv4 import runtime_url
from recommender.plan import Slo, Target
from recommender.report.render import format_html, format_markdown
from recommender.sizing import Sizing, Traffic, size_for

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REPORT_FORMATS = ("html", "md", "json")
CLOUDWATCH_GLOB = "*cloudwatch*.csv"


@dataclass(frozen=True)
class PipelineResult:
    loadtest: LoadTestResult
    analysis: Analysis


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
        (run_dir / REPORT_MD).write_text(text, encoding="utf-8")
        written.append(run_dir / REPORT_MD)
    if "html" in formats:
        # CloudWatch data is optional (collected only against real or emulated endpoints);
        # the file run.json names comes first, then any other *cloudwatch*.csv.
        named = str((run.meta.get("cloudwatch") or {}).get("file") or "cloudwatch.csv")
        found = sorted(run_dir.glob(CLOUDWATCH_GLOB), key=lambda p: (p.name != named, p.name))
        cloudwatch = [(p.name, p.read_text(encoding="utf-8", errors="replace"))
                      for p in found if p.is_file()]  # fmt: skip
        sim_path = run_dir / "simulation.json"  # written by `recommender simulate`
        simulation = json.loads(sim_path.read_text()) if sim_path.is_file() else None
        html = format_html(analysis, run.meta, run.seconds, sizing, cloudwatch, floor,
                           simulation)  # fmt: skip
        (run_dir / REPORT_HTML).write_text(html, encoding="utf-8")
        written.append(run_dir / REPORT_HTML)
    return ReportResult(analysis, sizing, written)


def run_pipeline(
    spec: LoadTestSpec,
    safety_factor: float,
    echo: Callable[[str], None] = print,
    cloudwatch: CloudWatchOptions | None = None,
) -> PipelineResult:
    result = measure(spec, echo, cloudwatch)
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
) -> LoadTestResult:
    """The load test, then (for a SageMaker endpoint) its CloudWatch metrics.

    A failed collection does not lose the run: it is reported, and `recommender collect`
    can fetch the metrics later (they arrive late anyway).
    """
    result = run_loadtest(spec, echo)
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


def sagemaker_target(
    aws: AwsClient,
    endpoint: str,
    variant: str | None,
    endpoint_url: str | None,
    **options: Any,
) -> Target:
    """Check the endpoint (exists, InService, has the variant) and describe what serves it."""
    info = aws.describe_endpoint(endpoint)
    if info.status != "InService":
        raise EndpointError(
            f"endpoint {endpoint} is {info.status}, not InService",
            "wait until it is InService (aws sagemaker wait endpoint-in-service)",
        )
    v = info.variant(variant)
    base = (endpoint_url or runtime_url(aws.region, endpoint).split("/endpoints/")[0]).rstrip("/")
    headers = dict(options.pop("headers", None) or {})
    if variant is not None and len(info.variants) > 1:
        # Without it, SageMaker spreads requests over all variants by their weights.
        headers.setdefault("X-Amzn-SageMaker-Target-Variant", v.name)
    return Target(
        url=f"{base}/endpoints/{endpoint}/invocations",
        name=options.pop("name", None) or endpoint,
        instances=options.pop("instances", None) or v.current_instance_count or 1,
        instance_type=v.instance_type,
        headers=headers,
        endpoint=endpoint,
        variant=v.name,
        region=aws.region,
        profile=aws.session.profile_name if aws.session.profile_name != "default" else None,
        **options,
    )
