"""`recommender demo --async`: size an emulated asynchronous endpoint end to end.

The AWS emulator gets a bucket and an endpoint whose config has an AsyncInferenceConfig
(results to s3://<bucket>/outputs, failures to s3://<bucket>/failures,
MaxConcurrentInvocationsPerInstance 2); `recommender serve --async` serves it (1 instance,
2 slots of 250 ms: it completes exactly 8 requests/s, and its queue grows above that) and
publishes the async CloudWatch metrics to the emulator. Then the same code a user runs
(`recommender run --endpoint ... --input-s3 ...`) drives it, collects and analyses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recommender.analysis import Analysis
from recommender.aws import AsyncConfig, AwsClient
from recommender.local.asyncserver import AsyncServerConfig
from recommender.local.emulator import EMULATOR_ENV, running_emulator
from recommender.local.process import running_async_server
from recommender.local.server import ServerConfig
from recommender.options import RunOptions
from recommender.pipeline import PipelineResult, run

ASYNC_ENDPOINT = "recommender-demo-async"
ASYNC_BUCKET = "recommender-demo-async"
ASYNC_SERVER = ServerConfig(port=0, instances=1, concurrency=2, service_time_ms=250.0,
                            model="sklearn")  # fmt: skip
ASYNC_SLO = "p95<=5s"
# The ramp: 3 to 13.5 rps in 1.5 rps steps, 15 s each; it stops at the first failing
# stage (9 rps, above the true 8). A module constant so tests can shorten it.
ASYNC_RAMP = {"start_rps": 3.0, "max_rps": 13.5, "stages": 8, "stage_seconds": 15.0,
              "warmup_seconds": 3.0}  # fmt: skip
METRICS_PERIOD = 5


@dataclass(frozen=True)
class AsyncDemoResult:
    result: PipelineResult
    true_rps_per_instance: float
    true_target: float  # c + mu x (L - S): the backlog per instance at the SLO's edge

    @property
    def analysis(self) -> Analysis:
        return self.result.analysis


def run_async_demo(out: Path, echo: Callable[[str], None] = print,
                   server: ServerConfig = ASYNC_SERVER) -> AsyncDemoResult:  # fmt: skip
    os.environ.update(EMULATOR_ENV)  # never a user's real credentials
    os.environ.pop("AWS_PROFILE", None)
    region = EMULATOR_ENV["AWS_DEFAULT_REGION"]
    echo("Starting the AWS emulator...")
    with running_emulator() as emulator:
        aws = AwsClient.create(region, endpoint_url=emulator)
        aws.create_bucket(ASYNC_BUCKET)
        config = AsyncConfig(f"s3://{ASYNC_BUCKET}/outputs", f"s3://{ASYNC_BUCKET}/failures",
                             server.concurrency)  # fmt: skip
        aws.create_async_endpoint(ASYNC_ENDPOINT, "AllTraffic", "ml.m5.large",
                                  server.instances, "local/recommender-demo:latest", config)
        aconfig = AsyncServerConfig(server, ASYNC_ENDPOINT, config.output_path,
                                    config.failure_path, region=region,
                                    aws_endpoint_url=emulator,
                                    metrics_period=METRICS_PERIOD)  # fmt: skip
        echo(f"Starting the asynchronous demo endpoint (true capacity "
             f"{aconfig.capacity_rps:g} requests/s)...")  # fmt: skip
        with running_async_server(aconfig) as base:
            options = RunOptions(
                endpoint=ASYNC_ENDPOINT, region=region, endpoint_url=base,
                aws_endpoint_url=emulator, input_s3=f"s3://{ASYNC_BUCKET}/inputs",
                slo=(ASYNC_SLO,), search="fixed", out=out, cloudwatch_wait=15.0,
                cloudwatch_period=METRICS_PERIOD, completion_timeout=30.0, **ASYNC_RAMP,  # type: ignore[arg-type]
            )  # fmt: skip
            result = run(options, echo=echo)
        left = aws.list_keys(ASYNC_BUCKET, "inputs/")
        if left:
            echo(f"warning: {len(left)} input object(s) left in s3://{ASYNC_BUCKET}/inputs")
    mu = server.concurrency / (server.service_time_ms / 1000.0)
    limit_s = float(ASYNC_SLO.split("<=")[1].rstrip("s"))
    truth = server.concurrency + mu * (limit_s - server.service_time_ms / 1000.0)
    return AsyncDemoResult(result, mu, truth)
