"""An asynchronous SageMaker endpoint whose capacity is known by construction.

`recommender serve --async` answers InvokeEndpointAsync (POST
/endpoints/<e>/async-invocations) as SageMaker's runtime does: it refuses unsigned calls,
takes the request's S3 InputLocation, queues it and answers 202 at once with the
InferenceId (body) and the OutputLocation and FailureLocation (headers). Behind the queue,
N instances each work on C requests at once (MaxConcurrentInvocationsPerInstance): a
request reads its input from S3 (the AWS emulator's, moto), runs the model, and writes its
result to `<S3OutputPath>/<InferenceId>.out`, or an error to
`<S3FailurePath>/<InferenceId>-error.out` (a missing input, a body the model rejects).

A request holds its slot for exactly S seconds, S3 reads and writes included (the sleep
pads to S, the result is written just before the slot frees), so the endpoint completes
at most N x C / S requests per second; above that its backlog grows without bound. One
process holds the queue and every instance: async rates are low (requests take long), and
one queue in front of the instances is how SageMaker's async endpoints work.

Every period it publishes SageMaker's asynchronous-endpoint metrics to CloudWatch:
ApproximateBacklogSize, ApproximateBacklogSizePerInstance, ApproximateAgeOfOldestRequest,
HasBacklogWithoutCapacity (EndpointName; sampled each second, as statistic sets), and
InvocationsProcessed, Invocation4XXErrors, Invocation5XXErrors, ModelLatency, TimeInBacklog,
TotalProcessingTime (EndpointName, VariantName). As SageMaker documents, no Invocations,
InvocationsPerInstance or OverheadLatency are published for an async endpoint.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from recommender.errors import ConfigError
from recommender.local.publisher import SAGEMAKER_NS
from recommender.local.server import ServerConfig, _looks_signed, _Reject, _train_iris, parse_rows
from recommender.plan import DEFAULT_VARIANT
from recommender.s3uri import S3Uri, parse_s3_uri

ASYNC_PATH = "/endpoints/{endpoint}/async-invocations"
INPUT_HEADER = "X-Amzn-SageMaker-InputLocation"
CONTENT_TYPE_HEADER = "X-Amzn-SageMaker-Content-Type"
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
OUTPUT_HEADER = "X-Amzn-SageMaker-OutputLocation"
FAILURE_HEADER = "X-Amzn-SageMaker-FailureLocation"


@dataclass(frozen=True)
class AsyncServerConfig:
    """`serve --async`: the capacity model of ServerConfig (instances, concurrency = the
    MaxConcurrentInvocationsPerInstance, service time), and where results go."""

    server: ServerConfig
    endpoint: str
    output_path: str  # s3://bucket/prefix
    failure_path: str | None = None
    variant: str = DEFAULT_VARIANT
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    metrics_period: int = 60
    publish: bool = True

    @property
    def capacity_rps(self) -> float:
        return self.server.capacity_rps

    def check(self) -> AsyncServerConfig:
        if not self.endpoint:
            raise ConfigError("--async needs --endpoint-name", "name the endpoint it serves")
        parse_s3_uri(self.output_path, "--output-s3")
        if self.failure_path:
            parse_s3_uri(self.failure_path, "--failure-s3")
        return self


@dataclass
class _Job:
    inference_id: str
    source: S3Uri
    content_type: str
    output: S3Uri
    failure: S3Uri | None
    arrived: float  # loop time


@dataclass
class _Period:
    """One CloudWatch period's statistics, by metric name: (count, sum, min, max)."""

    stats: dict[str, list[float]] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, name: str, value: float) -> None:
        s = self.stats.setdefault(name, [0.0, 0.0, math.inf, -math.inf])
        s[0] += 1
        s[1] += value
        s[2] = min(s[2], value)
        s[3] = max(s[3], value)


class AsyncEndpoint:
    """The queue, the instances' slots, and the metrics (one event loop)."""

    def __init__(self, config: AsyncServerConfig, s3: Any, predict: Any) -> None:
        self.config = config
        self.s3 = s3  # recommender.aws.AwsClient (boto3 stays in aws.py)
        self.predict = predict
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.waiting: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.in_process = 0
        self.accepted = self.completed = self.failed = self.unsigned_403 = 0
        self.output = parse_s3_uri(config.output_path, "--output-s3")
        self.failure = parse_s3_uri(config.failure_path, "--failure-s3") if config.failure_path \
            else None  # fmt: skip
        self.periods: dict[int, _Period] = {}
        self.service_time_s = config.server.service_time_ms / 1000.0
        self._write_s = 0.0  # how long a result write takes (moving average)

    @property
    def instances(self) -> int:
        return self.config.server.instances

    def backlog(self) -> int:
        """Requests queued or being processed (ApproximateBacklogSize's definition)."""
        return len(self.waiting) + self.in_process

    def _period(self, now: float) -> _Period:
        p = self.config.metrics_period
        return self.periods.setdefault(int(now // p) * p, _Period())

    async def invoke(self, request: web.Request) -> web.Response:
        if not _looks_signed(request):
            self.unsigned_403 += 1
            return web.json_response({"message": "Missing Authentication Token"}, status=403)
        if request.match_info["endpoint"] != self.config.endpoint:
            return web.json_response(
                {"message": f"Endpoint {request.match_info['endpoint']} not found."}, status=400
            )
        location = request.headers.get(INPUT_HEADER, "")
        try:
            source = parse_s3_uri(location, INPUT_HEADER)
        except ConfigError as exc:
            return web.json_response({"message": exc.message}, status=400)
        inference_id = request.headers.get(INFERENCE_ID_HEADER) or str(uuid.uuid4())
        job = _Job(
            inference_id,
            source,
            request.headers.get(CONTENT_TYPE_HEADER, "application/json"),
            self.output.child(f"{inference_id}.out"),
            self.failure.child(f"{inference_id}-error.out") if self.failure else None,
            asyncio.get_running_loop().time(),
        )
        self.waiting[inference_id] = time.time()
        self.queue.put_nowait(job)
        self.accepted += 1
        headers = {OUTPUT_HEADER: str(job.output)}
        if job.failure is not None:
            headers[FAILURE_HEADER] = str(job.failure)
        return web.json_response({"InferenceId": inference_id}, status=202, headers=headers)

    async def slot(self) -> None:
        """One of an instance's C slots: takes the oldest request, holds it S seconds."""
        loop = asyncio.get_running_loop()
        while True:
            job = await self.queue.get()
            self.waiting.pop(job.inference_id, None)
            self.in_process += 1
            start = loop.time()
            try:
                await self._process(job, start)
            finally:
                self.in_process -= 1
                end = loop.time()
                period = self._period(time.time())
                period.add("TimeInBacklog", (start - job.arrived) * 1000.0)
                period.add("TotalProcessingTime", (end - job.arrived) * 1000.0)

    async def _process(self, job: _Job, start: float) -> None:
        loop = asyncio.get_running_loop()
        period = self._period(time.time())
        try:
            body = await asyncio.to_thread(self.s3.get_object, job.source.bucket, job.source.key)
            rows = parse_rows(body, job.content_type) if self.predict else []
            result = {"predictions": self.predict(rows)} if self.predict else {"ok": True}
            target: S3Uri | None = job.output
            outcome, payload = 200, json.dumps(result).encode()
        except _Reject as exc:
            outcome, target = exc.status, job.failure
            payload = json.dumps({"error": exc.message}).encode()
        except Exception as exc:  # noqa: BLE001 - a missing input is the request's failure
            outcome, target = 400, job.failure
            payload = json.dumps({"error": f"cannot read {job.source}: {exc}"}).encode()
        model_done = loop.time()
        # Pad to S, then write, so the result appears about S after the slot was taken.
        await asyncio.sleep(max(0.0, start + self.service_time_s - self._write_s - loop.time()))
        if target is not None:
            before = loop.time()
            try:
                await asyncio.to_thread(self.s3.put_object, target.bucket, target.key, payload,
                                        "application/json")  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - counted, like ResponseUploadFailures
                period.counts["ResponseUploadFailures"] += 1
                print(f"warning: cannot write {target}: {exc}", file=sys.stderr)
            self._write_s = 0.8 * self._write_s + 0.2 * (loop.time() - before)
        await asyncio.sleep(max(0.0, start + self.service_time_s - loop.time()))
        if outcome == 200:
            self.completed += 1
            period.counts["InvocationsProcessed"] += 1
            period.add("ModelLatency", (model_done - start) * 1e6)
        else:
            self.failed += 1
            period.counts["Invocation4XXErrors" if outcome < 500 else "Invocation5XXErrors"] += 1

    def sample(self, now: float) -> None:
        """The queue's metrics, sampled once a second into the period's statistic sets."""
        period = self._period(now)
        backlog = self.backlog()
        oldest = next(iter(self.waiting.values()), None)
        period.add("ApproximateBacklogSize", backlog)
        period.add("ApproximateBacklogSizePerInstance", backlog / max(1, self.instances))
        period.add("ApproximateAgeOfOldestRequest", 0.0 if oldest is None else now - oldest)
        period.add("HasBacklogWithoutCapacity", 1.0 if backlog and self.instances == 0 else 0.0)

    def drain(self, now: float) -> list[dict[str, Any]]:
        """MetricDatum for every period that has ended."""
        p = self.config.metrics_period
        out: list[dict[str, Any]] = []
        for start in sorted(k for k in self.periods if k + p <= now):
            period = self.periods.pop(start)
            ts = datetime.fromtimestamp(start, timezone.utc)
            for name in ("InvocationsProcessed", "Invocation4XXErrors", "Invocation5XXErrors"):
                out.append(self._datum(name, ts, "Count", True, value=period.counts[name]))
            for name, (n, total, low, high) in period.stats.items():
                per_endpoint = name.startswith(("Approximate", "HasBacklog"))
                unit = {"ModelLatency": "Microseconds", "ApproximateAgeOfOldestRequest": "Seconds",
                        "TimeInBacklog": "Milliseconds",
                        "TotalProcessingTime": "Milliseconds"}.get(name, "Count")  # fmt: skip
                d = self._datum(name, ts, unit, not per_endpoint)
                d["StatisticValues"] = {"SampleCount": n, "Sum": total, "Minimum": low,
                                        "Maximum": high}  # fmt: skip
                out.append(d)
        return out

    def _datum(self, name: str, ts: datetime, unit: str, variant: bool,
               value: float | None = None) -> dict[str, Any]:  # fmt: skip
        dims = [{"Name": "EndpointName", "Value": self.config.endpoint}]
        if variant:
            dims.append({"Name": "VariantName", "Value": self.config.variant})
        d: dict[str, Any] = {"MetricName": name, "Dimensions": dims, "Timestamp": ts,
                             "Unit": unit,
                             "StorageResolution": 1 if self.config.metrics_period < 60 else 60}
        if value is not None:
            d["Value"] = float(value)
        return d

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"accepted": self.accepted, "completed": self.completed,
                                  "failed": self.failed, "backlog": self.backlog(),
                                  "unsigned_403": self.unsigned_403})  # fmt: skip

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


async def _publish(endpoint: AsyncEndpoint, aws: Any, stop: asyncio.Event) -> None:
    """Sample every second; publish each period shortly after it ends; the rest at stop."""
    warned = False
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0 - time.time() % 1.0)
        except asyncio.TimeoutError:
            pass
        final = stop.is_set()
        now = time.time()
        endpoint.sample(now)
        data = endpoint.drain(now + (endpoint.config.metrics_period if final else 0))
        if data and endpoint.config.publish:
            try:
                await asyncio.to_thread(aws.put_metric_data, SAGEMAKER_NS, data)
            except Exception as exc:  # noqa: BLE001 - serving matters more than metrics
                if not warned:
                    print(f"warning: cannot publish metrics: {exc}", file=sys.stderr)
                    warned = True
        if final:
            return


async def _serve(config: AsyncServerConfig, ready: Callable[[str], None],
                 stop: asyncio.Event) -> None:  # fmt: skip
    from recommender.aws import AwsClient  # boto3 only in the process that serves

    aws = AwsClient.create(config.region, endpoint_url=config.aws_endpoint_url)
    aws.client("s3"), aws.client("cloudwatch")  # made here: boto3 makes clients unsafely in threads
    predict = _train_iris() if config.server.model == "sklearn" else None
    endpoint = AsyncEndpoint(config, aws, predict)
    app = web.Application()
    app.router.add_get("/ping", endpoint.ping)
    app.router.add_get("/stats", endpoint.stats)
    app.router.add_post(ASYNC_PATH, endpoint.invoke)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port)
    await site.start()
    port = runner.addresses[0][1]
    slots = [asyncio.create_task(endpoint.slot())
             for _ in range(config.server.instances * config.server.concurrency)]  # fmt: skip
    publisher = asyncio.create_task(_publish(endpoint, aws, stop))
    ready(f"http://{config.server.host}:{port}")
    await stop.wait()
    await runner.cleanup()
    for task in slots:
        task.cancel()
    await publisher


def serve_async(config: AsyncServerConfig, ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; call ready(base_url) once it accepts."""
    config.check()
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a stack dump on demand

    async def main() -> None:
        stop = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await _serve(config, ready or (lambda _: None), stop)

    asyncio.run(main())
