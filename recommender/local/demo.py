"""`recommender demo`: the whole pipeline on the embedded default, through the AWS code path.

It starts the AWS emulator, registers an endpoint there (CreateModel, CreateEndpointConfig,
CreateEndpoint), starts the local model server publishing SageMaker's CloudWatch metrics to
the emulator, and runs the same code `recommender run --endpoint` runs against AWS: the
DescribeEndpoint check, SigV4-signed InvokeEndpoint load, CloudWatch collection.

The server (1 instance, 4 slots, 20 ms per request) saturates at exactly 200 requests/s;
the search crosses that, and the SLO (p95 <= 150 ms) is met well below it and broken just
above, so the estimate can be read against the truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from recommender.analysis import Analysis
from recommender.aws import AwsClient
from recommender.loadgen.runner import LoadTestResult, LoadTestSpec, Watch
from recommender.loadgen.sigv4 import Credentials
from recommender.local.emulator import EMULATOR_ENV, running_emulator
from recommender.local.process import running_server
from recommender.local.publisher import PublishConfig
from recommender.local.server import ServerConfig
from recommender.local.serverless import ServerlessEmulation
from recommender.metrics import default_period
from recommender.pipeline import CloudWatchOptions, run_pipeline, sagemaker_target, write_reports
from recommender.plan import DEFAULT_VARIANT, SearchSettings, parse_slo
from recommender.sizing import Traffic

DEMO_SERVER = ServerConfig(port=0, instances=1, concurrency=4, service_time_ms=20.0,
                           model="sklearn")  # fmt: skip
DEMO_SLO = "p95<=150ms"
DEMO_ENDPOINT = "recommender-demo"
DEMO_VARIANT = DEFAULT_VARIANT
DEMO_INSTANCE_TYPE = "ml.m5.large"


# `demo --serverless`: a serverless variant of MaxConcurrency 8 (2 provisioned) whose
# executions take 50 ms (20 rps each, 160 rps in all, throttled beyond) and start cold in
# 400 ms after 5 idle seconds; the SLO p95 <= 150 ms is broken by every cold request.
DEMO_SERVERLESS = ServerlessEmulation(max_concurrency=8, provisioned_concurrency=2,
                                      cold_start_ms=400.0, idle_seconds=5.0, memory_mb=2048)
DEMO_SERVERLESS_SERVER = ServerConfig(port=0, instances=1, service_time_ms=50.0,
                                      model="sklearn", serverless=DEMO_SERVERLESS)  # fmt: skip
DEMO_SERVERLESS_PLAN = SearchSettings(start_rps=20, max_rps=240, stage_seconds=10,
                                      warmup_seconds=2, max_duration=120)  # fmt: skip
DEMO_SERVERLESS_PEAK_RPS = 40.0  # the expected peak the demo sizes provisioned concurrency for


@dataclass(frozen=True)
class DemoResult:
    loadtest: LoadTestResult
    analysis: Analysis
    true_capacity: float
    true_rps_per_concurrency: float | None = None  # serverless: 1000 / service time


# The adaptive search (the default): grow from 50 rps, then bisect to 5%. A module constant,
# read at each run, so the test suite can run the real demo path with shorter stages.
DEMO_PLAN = SearchSettings(start_rps=50, max_rps=240, stage_seconds=10, warmup_seconds=2,
                           max_duration=120)  # fmt: skip


def run_demo(
    out: Path, echo: Callable[[str], None] = print, watch: Watch | None = None,
    serverless: bool = False,
) -> DemoResult:  # fmt: skip
    """Size the demo server; `serverless`: the emulated serverless variant instead."""
    plan = DEMO_SERVERLESS_PLAN if serverless else DEMO_PLAN
    base_server = DEMO_SERVERLESS_SERVER if serverless else DEMO_SERVER
    period = default_period(plan.stage_seconds)
    # The emulator's throwaway credentials, for this process and the ones it starts: the
    # demo must never sign with, or send, a user's real ones.
    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    echo("Starting the AWS emulator...")
    with running_emulator() as emulator:
        aws = AwsClient.create(EMULATOR_ENV["AWS_DEFAULT_REGION"], endpoint_url=emulator)
        aws.create_endpoint(DEMO_ENDPOINT, DEMO_VARIANT, DEMO_INSTANCE_TYPE, 1,
                            image="local/recommender-demo:latest",
                            serverless=DEMO_SERVERLESS.service_config() if serverless else None)
        publish = PublishConfig(DEMO_ENDPOINT, DEMO_VARIANT, period, aws.region, emulator)
        server = replace(base_server, publish=publish)
        echo(f"Starting the demo model server (true capacity {server.capacity_rps:g} rps)...")
        with running_server(server) as base:
            target = sagemaker_target(aws, DEMO_ENDPOINT, DEMO_VARIANT, endpoint_url=base,
                                      kind="serverless" if serverless else None,
                                      name="demo-serverless" if serverless else "demo")

            def credentials() -> Credentials:
                return Credentials(*aws.frozen_credentials())

            spec = LoadTestSpec(target, plan, parse_slo([DEMO_SLO]), out=out,
                                credentials=credentials, align_seconds=period)  # fmt: skip
            result = run_pipeline(spec, 0.5, echo, CloudWatchOptions(aws, period, 30.0), watch)
    if not serverless:
        return DemoResult(result.loadtest, result.analysis, server.capacity_rps)
    # Provisioned concurrency is sized for an expected peak: the report's --peak-rps.
    sized = write_reports(result.loadtest.run_dir, spec.slo, 0.5,
                          Traffic(peak_rps=DEMO_SERVERLESS_PEAK_RPS))  # fmt: skip
    return DemoResult(result.loadtest, sized.analysis, server.capacity_rps,
                      1000.0 / server.service_time_ms)
