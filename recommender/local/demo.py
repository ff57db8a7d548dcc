"""`recommender demo`: the whole pipeline on the embedded default, through the AWS code path.

It starts the AWS emulator, registers an endpoint there (CreateModel, CreateEndpointConfig,
CreateEndpoint), starts the local model server publishing SageMaker's CloudWatch metrics to
the emulator, and runs the same code `recommender run --endpoint` runs against AWS: the
DescribeEndpoint check, SigV4-signed InvokeEndpoint load, CloudWatch collection.

The server (1 instance, 4 slots, 20 ms per request) saturates at exactly 200 requests/s.
Under Poisson arrivals (the default) it meets the SLO (p95 <= 150 ms) only up to about
188.5 rps: an M/D/4 queue (recommender.queueing). Under uniform arrivals it never queues
below saturation, so its capacity at the SLO is the 200 itself. The demo prints the truth for
the arrival model it used, so the estimate can be read against it.
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
from recommender.metrics import default_period
from recommender.pipeline import CloudWatchOptions, run_pipeline, sagemaker_target
from recommender.plan import DEFAULT_VARIANT, SearchSettings, parse_slo

DEMO_SERVER = ServerConfig(port=0, instances=1, concurrency=4, service_time_ms=20.0,
                           model="sklearn")  # fmt: skip
DEMO_SLO = "p95<=150ms"
DEMO_ENDPOINT = "recommender-demo"
DEMO_VARIANT = DEFAULT_VARIANT
DEMO_INSTANCE_TYPE = "ml.m5.large"


@dataclass(frozen=True)
class DemoResult:
    loadtest: LoadTestResult
    analysis: Analysis
    true_capacity: float  # at the SLO, under the arrivals used
    saturation: float  # N x C / S: the throughput ceiling
    arrivals: str


def true_capacity(server: ServerConfig, slo: str, arrivals: str) -> float:
    """The demo server's capacity at its SLO for the arrival model (whole server, rps)."""
    if arrivals == "uniform":
        return server.capacity_rps
    from recommender.queueing import poisson_capacity

    term = parse_slo([slo]).terms[0]
    assert term.quantile is not None
    return poisson_capacity(server.instances, server.concurrency, server.service_time_ms,
                            term.quantile, term.limit_ms)  # fmt: skip


# The adaptive search (the default): grow from 50 rps, then bisect to 5%. A module constant,
# read at each run, so the test suite can run the real demo path with shorter stages.
DEMO_PLAN = SearchSettings(start_rps=50, max_rps=240, stage_seconds=10, warmup_seconds=2,
                           max_duration=120)  # fmt: skip


def run_demo(
    out: Path, echo: Callable[[str], None] = print, watch: Watch | None = None
) -> DemoResult:
    plan = DEMO_PLAN
    period = default_period(plan.stage_seconds)
    # The emulator's throwaway credentials, for this process and the ones it starts: the
    # demo must never sign with, or send, a user's real ones.
    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    echo("Starting the AWS emulator...")
    with running_emulator() as emulator:
        aws = AwsClient.create(EMULATOR_ENV["AWS_DEFAULT_REGION"], endpoint_url=emulator)
        aws.create_endpoint(DEMO_ENDPOINT, DEMO_VARIANT, DEMO_INSTANCE_TYPE, 1,
                            image="local/recommender-demo:latest")  # fmt: skip
        publish = PublishConfig(DEMO_ENDPOINT, DEMO_VARIANT, period, aws.region, emulator)
        server = replace(DEMO_SERVER, publish=publish)
        echo(f"Starting the demo model server (true capacity {server.capacity_rps:g} rps)...")
        with running_server(server) as base:
            target = sagemaker_target(aws, DEMO_ENDPOINT, DEMO_VARIANT, endpoint_url=base,
                                      name="demo")  # fmt: skip

            def credentials() -> Credentials:
                return Credentials(*aws.frozen_credentials())

            spec = LoadTestSpec(target, plan, parse_slo([DEMO_SLO]), out=out,
                                credentials=credentials, align_seconds=period)  # fmt: skip
            result = run_pipeline(spec, 0.5, echo, CloudWatchOptions(aws, period, 30.0), watch)
    arrivals = spec.arrivals
    truth = true_capacity(server, DEMO_SLO, arrivals)
    return DemoResult(result.loadtest, result.analysis, truth, server.capacity_rps, arrivals)
