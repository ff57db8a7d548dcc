"""Makes the local model server report to CloudWatch the way SageMaker hosting does.

Each instance folds its requests into period buckets (by completion time, on period
boundaries) and, once a bucket has ended, publishes it with PutMetricData under the same
namespaces, names, dimensions and units as SageMaker: AWS/SageMaker Invocations,
InvocationsPerInstance, Invocation4XXErrors, Invocation5XXErrors (Count), ModelLatency and
OverheadLatency (Microseconds, as values and their counts, so that CloudWatch has their
percentiles), and /aws/sagemaker/Endpoints
CPUUtilization and MemoryUtilization (Percent). Several instances publish into the same
series and CloudWatch adds them up, as it does for a real variant.

A serverless variant (recommender.local.serverless) also publishes what AWS lists for
serverless endpoints: ModelSetupTime (Microseconds, one sample per cold start),
ServerlessConcurrentExecutionsUtilization, and with provisioned concurrency
ServerlessProvisionedConcurrencyExecutions, ServerlessProvisionedConcurrencyUtilization
(statistic sets of the executions busy as each request started), and the counts
ServerlessProvisionedConcurrencyInvocations, ServerlessProvisionedConcurrencySpilloverInvocations.
Throttled requests (ThrottlingException, a 400) count only as Invocation4XXErrors.

Invocations counts requests that reached the model, answered or not (as SageMaker counts
them); requests refused with 503 because the instance's queue was full stand for
SageMaker's front end refusing an overloaded instance, and count only as
Invocation5XXErrors.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from recommender.errors import ConfigError
from recommender.local.serverless import ServerlessEmulation
from recommender.plan import DEFAULT_VARIANT

if TYPE_CHECKING:
    from recommender.aws import AwsClient

SAGEMAKER_NS = "AWS/SageMaker"
ENDPOINTS_NS = "/aws/sagemaker/Endpoints"
MAX_VALUES = 150  # distinct values in one PutMetricData that has a Values array (AWS's limit)


@dataclass(frozen=True)
class PublishConfig:
    endpoint: str
    variant: str = DEFAULT_VARIANT
    period: int = 60
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None

    @classmethod
    def from_flags(cls, endpoint: str | None, variant: str, period: int, region: str | None,
                   aws_endpoint_url: str | None) -> PublishConfig:  # fmt: skip
        """`serve --publish-metrics ...`, checked: an endpoint to name, a CloudWatch period."""
        if not endpoint:
            raise ConfigError("--publish-metrics needs --endpoint-name", "name the endpoint")
        check_period(period)
        return cls(endpoint, variant, period, region or "us-east-1", aws_endpoint_url)


def check_period(period: int) -> None:
    """--metrics-period: a period CloudWatch takes (0 or less is a multiple of 60 too, but
    no period)."""
    if period < 1 or (period not in (1, 5, 10, 30) and period % 60):
        raise ConfigError(
            f"--metrics-period {period} is not a CloudWatch period",
            "use 1, 5, 10, 30 or a multiple of 60",
        )


@dataclass
class _Stats:
    """A CloudWatch statistic set (SampleCount, Sum, Minimum, Maximum)."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def to_api(self) -> dict[str, float]:
        return {"SampleCount": self.count, "Sum": self.total, "Minimum": self.low,
                "Maximum": self.high}  # fmt: skip


@dataclass
class _Distribution(_Stats):
    """A statistic set that also keeps its values, each to 3 significant digits (0.5%), for
    CloudWatch's percentiles: published as Values/Counts, from which CloudWatch computes p50,
    p99 and the rest (from a statistic set it cannot), as SageMaker's own latencies have them."""

    counts: Counter[float] = field(default_factory=Counter)

    def add(self, value: float) -> None:
        super().add(value)
        self.counts[float(f"{value:.3g}")] += 1

    def to_values(self) -> list[dict[str, list[float]]]:
        """Values/Counts, at most MAX_VALUES distinct values each (PutMetricData's limit)."""
        items = sorted(self.counts.items())
        return [{"Values": [v for v, _ in part], "Counts": [float(c) for _, c in part]}
                for part in (items[i : i + MAX_VALUES] for i in range(0, len(items), MAX_VALUES))]


@dataclass
class _Bucket:
    invocations: int = 0
    busy_s: float = 0.0  # request-seconds completed (Little's law: / period = mean in flight)
    errors_4xx: int = 0
    errors_5xx: int = 0
    model_us: _Distribution = field(default_factory=_Distribution)
    overhead_us: _Distribution = field(default_factory=_Distribution)
    setup_us: _Stats = field(default_factory=_Stats)  # serverless: one sample per cold start
    executions: _Stats = field(default_factory=_Stats)  # busy executions as requests started
    provisioned_executions: _Stats = field(default_factory=_Stats)
    provisioned_invocations: int = 0
    spillover_invocations: int = 0


class MetricBuckets:
    """Per-period counters of one instance (pure; the clock is passed in)."""

    def __init__(
        self, config: PublishConfig, instances: int, serverless: ServerlessEmulation | None = None
    ) -> None:
        self.config = config
        self.instances = instances
        self.serverless = serverless
        self._buckets: dict[int, _Bucket] = {}
        # Per inference component named in the request header: its own series. Each
        # instance serves one copy of every component it is asked for.
        self._components: dict[str, dict[int, _Bucket]] = {}
        self._filled: int | None = None  # the latest period start drain() has filled to

    def _bucket(self, now: float) -> _Bucket:
        key = int(now // self.config.period) * self.config.period
        return self._buckets.setdefault(key, _Bucket())

    def record(self, now: float, status: int, model_us: float, overhead_us: float,
               component: str | None = None, throttled: bool = False) -> None:  # fmt: skip
        self._add(self._bucket(now), status, model_us, overhead_us, throttled)
        if component:
            key = int(now // self.config.period) * self.config.period
            bucket = self._components.setdefault(component, {}).setdefault(key, _Bucket())
            self._add(bucket, status, model_us, overhead_us, throttled)

    @staticmethod
    def _add(b: _Bucket, status: int, model_us: float, overhead_us: float,
             throttled: bool = False) -> None:  # fmt: skip
        if 400 <= status < 500:
            b.errors_4xx += 1
        elif status >= 500:
            b.errors_5xx += 1
        if status != 503 and not throttled:  # refused before the model saw the request
            b.invocations += 1
        if status < 400:
            b.model_us.add(model_us)
            b.overhead_us.add(overhead_us)
            b.busy_s += (model_us + overhead_us) / 1e6

    def record_serverless(self, now: float, setup_us: float | None, provisioned: bool,
                          executions: int, provisioned_executions: int) -> None:  # fmt: skip
        """A served request of a serverless variant: its cold start (None: it was warm),
        whether a provisioned execution took it, and the executions busy with it."""
        b = self._bucket(now)
        if setup_us is not None:
            b.setup_us.add(setup_us)
        b.executions.add(executions)
        b.provisioned_executions.add(provisioned_executions)
        if provisioned:
            b.provisioned_invocations += 1
        else:
            b.spillover_invocations += 1

    def drain(self, now: float, cpu: float, memory: float) -> list[tuple[str, dict[str, Any]]]:
        """(namespace, MetricDatum) for every bucket that ended before `now`."""
        # Idle periods still report zeros, as SageMaker does.
        period = self.config.period
        current = int(now // period) * period
        first = current if self._filled is None else self._filled
        for start in range(first, current + period, period):
            self._buckets.setdefault(start, _Bucket())
        self._filled = current
        out: list[tuple[str, dict[str, Any]]] = []
        for start in sorted(k for k in self._buckets if k + self.config.period <= now):
            b = self._buckets.pop(start)
            ts = datetime.fromtimestamp(start, timezone.utc)
            out += [(SAGEMAKER_NS, d) for d in self._sagemaker(b, ts)]
            out.append((ENDPOINTS_NS, self._datum("CPUUtilization", ts, "Percent", cpu)))
            out.append((ENDPOINTS_NS, self._datum("MemoryUtilization", ts, "Percent", memory)))
        for name, buckets in self._components.items():
            for start in sorted(k for k in buckets if k + self.config.period <= now):
                ts = datetime.fromtimestamp(start, timezone.utc)
                out += [(SAGEMAKER_NS, d) for d in self._component(name, buckets.pop(start), ts)]
        return out

    def _component(self, name: str, b: _Bucket, ts: datetime) -> list[dict[str, Any]]:
        """An inference component's series (dimension InferenceComponentName): this
        instance is one copy, so its invocations and its mean requests in flight are per
        copy; CloudWatch's Sum of InvocationsPerCopy and Average of ConcurrentRequestsPerCopy
        over the copies then come out as AWS's."""
        dims = [{"Name": "InferenceComponentName", "Value": name}]
        data = [self._datum("Invocations", ts, "Count", b.invocations),
                self._datum("InvocationsPerCopy", ts, "Count", b.invocations / self.instances),
                self._datum("Invocation4XXErrors", ts, "Count", b.errors_4xx),
                self._datum("Invocation5XXErrors", ts, "Count", b.errors_5xx),
                self._datum("ConcurrentRequestsPerCopy", ts, "Count",
                            b.busy_s / self.config.period)]  # fmt: skip
        data += self._values("ModelLatency", ts, b.model_us)
        for d in data:
            d["Dimensions"] = dims
        return data

    def _values(self, name: str, ts: datetime, dist: _Distribution) -> list[dict[str, Any]]:
        """A latency's datums: its values and their counts (none for an empty period)."""
        out = []
        for part in dist.to_values():
            d = self._datum(name, ts, "Microseconds", None)
            d.update(part)
            out.append(d)
        return out

    def _sagemaker(self, b: _Bucket, ts: datetime) -> list[dict[str, Any]]:
        data = [
            self._datum("Invocations", ts, "Count", b.invocations),
            self._datum("InvocationsPerInstance", ts, "Count", b.invocations / self.instances),
            self._datum("Invocation4XXErrors", ts, "Count", b.errors_4xx),
            self._datum("Invocation5XXErrors", ts, "Count", b.errors_5xx),
        ]
        data += self._values("ModelLatency", ts, b.model_us)
        data += self._values("OverheadLatency", ts, b.overhead_us)
        if b.setup_us.count:
            d = self._datum("ModelSetupTime", ts, "Microseconds", None)
            d["StatisticValues"] = b.setup_us.to_api()
            data.append(d)
        if self.serverless is not None:
            data += self._serverless(b, ts, self.serverless)
        return data

    def _serverless(self, b: _Bucket, ts: datetime, e: ServerlessEmulation) -> list[dict[str, Any]]:
        def scaled(stats: _Stats, by: float) -> dict[str, float]:
            return {"SampleCount": stats.count, "Sum": stats.total / by,
                    "Minimum": stats.low / by, "Maximum": stats.high / by}  # fmt: skip

        sets = [("ServerlessConcurrentExecutionsUtilization", "None",
                 scaled(b.executions, e.max_concurrency))]  # fmt: skip
        data = []
        p = e.provisioned_concurrency
        if p:
            sets += [("ServerlessProvisionedConcurrencyExecutions", "Count",
                      scaled(b.provisioned_executions, 1)),
                     ("ServerlessProvisionedConcurrencyUtilization", "None",
                      scaled(b.provisioned_executions, p))]  # fmt: skip
            data += [
                self._datum("ServerlessProvisionedConcurrencyInvocations", ts, "Count",
                            b.provisioned_invocations),
                self._datum("ServerlessProvisionedConcurrencySpilloverInvocations", ts, "Count",
                            b.spillover_invocations),
            ]  # fmt: skip
        for name, unit, values in sets:
            if b.executions.count:
                d = self._datum(name, ts, unit, None)
                d["StatisticValues"] = values
                data.append(d)
        return data

    def _datum(self, name: str, ts: datetime, unit: str, value: float | None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "MetricName": name,
            "Dimensions": [
                {"Name": "EndpointName", "Value": self.config.endpoint},
                {"Name": "VariantName", "Value": self.config.variant},
            ],
            "Timestamp": ts,
            "Unit": unit,
            # Periods under a minute need high-resolution storage to be queryable.
            "StorageResolution": 1 if self.config.period < 60 else 60,
        }
        if value is not None:
            d["Value"] = float(value)
        return d


def publisher_client(config: PublishConfig) -> AwsClient:
    """The client `publish_forever` puts metrics through, its CloudWatch client made now.

    Importing boto3 and loading CloudWatch's service model take ~0.6 s of CPU (2-3x that on a
    slower machine), most of it holding the GIL. Done lazily, it ran in the serving process
    just after the server said it was ready (the import) and when the first requests'
    metrics were due (the model): a stall of every request in flight at the start of a load
    test, which released them together (past a serverless variant's MaxConcurrency on a busy
    machine). Call it before the server says it is ready."""
    from recommender.aws import AwsClient  # boto3 only in processes that publish

    aws = AwsClient.create(config.region, endpoint_url=config.aws_endpoint_url)
    aws.client("cloudwatch")
    return aws


async def publish_forever(
    buckets: MetricBuckets,
    usage: Callable[[], tuple[float, float]],
    stop: asyncio.Event,
    aws: AwsClient,
) -> None:
    """Publish each bucket shortly after it ends, until `stop`; then publish what is left,
    through `aws` (`publisher_client`'s)."""
    config = buckets.config
    warned = False
    while True:
        now = time.time()
        wake = (now // config.period + 1) * config.period + 0.2 - now
        try:
            await asyncio.wait_for(stop.wait(), timeout=wake)
        except asyncio.TimeoutError:
            pass
        final = stop.is_set()
        cpu, memory = usage()
        data = buckets.drain(time.time() + (config.period if final else 0), cpu, memory)
        for namespace in {ns for ns, _ in data}:
            try:
                await asyncio.to_thread(
                    aws.put_metric_data, namespace, [d for ns, d in data if ns == namespace]
                )
            except Exception as exc:  # noqa: BLE001 - serving matters more than metrics
                if not warned:
                    print(f"warning: cannot publish metrics: {exc}", file=sys.stderr)
                    warned = True
        if final:
            return
