"""Which CloudWatch metrics to collect for a run, and how they line up with its stages (pure).

SageMaker publishes per variant (dimensions EndpointName, VariantName), 1-minute data, about
two minutes late. ModelLatency and OverheadLatency are in MICROseconds. Client latency =
network + OverheadLatency + ModelLatency.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recommender.cloudwatch import Datapoint, MetricQuery
from recommender.errors import RunDirError

SAGEMAKER_NS = "AWS/SageMaker"
ENDPOINTS_NS = "/aws/sagemaker/Endpoints"
COUNTS = ("Invocations", "InvocationsPerInstance", "Invocation4XXErrors",
          "Invocation5XXErrors", "InvocationModelErrors")  # fmt: skip
LATENCIES = ("ModelLatency", "OverheadLatency")
LATENCY_STATS = ("Average", "Maximum", "SampleCount")
PERCENTILE_STATS = ("p50", "p90", "p95", "p99")
# Serverless variants (AWS, "Alarms and logs for tracking metrics from serverless endpoints"):
# ModelSetupTime (Microseconds, one sample per cold start), the concurrency utilizations, and
# with provisioned concurrency the invocations it took and those that spilled over.
SETUP = ("ModelSetupTime",)
SERVERLESS_COUNTS = ("ServerlessProvisionedConcurrencyInvocations",
                     "ServerlessProvisionedConcurrencySpilloverInvocations")  # fmt: skip
SERVERLESS_GAUGES = ("ServerlessConcurrentExecutionsUtilization",
                     "ServerlessProvisionedConcurrencyExecutions",
                     "ServerlessProvisionedConcurrencyUtilization")  # fmt: skip
UTILIZATION = ("CPUUtilization", "MemoryUtilization", "GPUUtilization",
               "GPUMemoryUtilization", "DiskUtilization")  # fmt: skip
UNITS = {**{m: "Count" for m in COUNTS + SERVERLESS_COUNTS},
         **{m: "Microseconds" for m in LATENCIES + SETUP},
         "ServerlessProvisionedConcurrencyExecutions": "Count",
         **{m: "Percent" for m in UTILIZATION}}  # fmt: skip
CSV_COLUMNS = ("metric", "stat", "timestamp", "value", "unit", "period")
DEFAULT_PERIOD = 60  # a foreign CSV without a period column: SageMaker's 1-minute data
# An inference component's own series (AWS/SageMaker, dimension InferenceComponentName):
# the invocation metrics above per component, invocations per copy, and the concurrency per
# copy that SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution tracks
# (published every 10 s); its utilization is in /aws/sagemaker/InferenceComponents.
COMPONENTS_NS = "/aws/sagemaker/InferenceComponents"
COMPONENT_COUNTS = ("Invocations", "InvocationsPerCopy", "Invocation4XXErrors",
                    "Invocation5XXErrors", "InvocationModelErrors")  # fmt: skip
CONCURRENCY = "ConcurrentRequestsPerCopy"
COMPONENT_UTILIZATION = ("CPUUtilizationNormalized", "MemoryUtilizationNormalized",
                         "GPUUtilizationNormalized", "GPUMemoryUtilizationNormalized")  # fmt: skip
UNITS = {**UNITS, "InvocationsPerCopy": "Count", CONCURRENCY: "Count",
         **{m: "Percent" for m in COMPONENT_UTILIZATION}}  # fmt: skip


def queries(
    endpoint: str, variant: str, period: int, component: str | None = None,
    serverless: bool = False,
) -> tuple[list[MetricQuery], list[MetricQuery]]:
    """(plain statistics, percentile statistics). Percentiles go in calls of their own:
    some services (and the AWS emulator) refuse them, which must not cost the rest.
    With `component`, the inference component's series instead of the variant's;
    `serverless`: a serverless variant's metrics too."""
    if component is not None:
        dims: tuple[tuple[str, str], ...] = (("InferenceComponentName", component),)
        plain = [(SAGEMAKER_NS, m, "Sum") for m in COMPONENT_COUNTS]
        plain += [(SAGEMAKER_NS, m, s) for m in LATENCIES for s in LATENCY_STATS]
        plain += [(SAGEMAKER_NS, CONCURRENCY, s) for s in ("Average", "Maximum")]
        plain += [(COMPONENTS_NS, m, s) for m in COMPONENT_UTILIZATION
                  for s in ("Average", "Maximum")]  # fmt: skip
    else:
        dims = (("EndpointName", endpoint), ("VariantName", variant))
        plain = [(SAGEMAKER_NS, m, "Sum") for m in COUNTS]
        plain += [(SAGEMAKER_NS, m, s) for m in LATENCIES for s in LATENCY_STATS]
        if serverless:
            plain += [(SAGEMAKER_NS, m, s) for m in SETUP for s in LATENCY_STATS]
            plain += [(SAGEMAKER_NS, m, "Sum") for m in SERVERLESS_COUNTS]
            plain += [(SAGEMAKER_NS, m, s) for m in SERVERLESS_GAUGES
                      for s in ("Average", "Maximum")]  # fmt: skip
        plain += [(ENDPOINTS_NS, m, s) for m in UTILIZATION for s in ("Average", "Maximum")]
    pct = [(SAGEMAKER_NS, m, s) for m in LATENCIES for s in PERCENTILE_STATS]

    def build(specs: list[tuple[str, str, str]], prefix: str) -> list[MetricQuery]:
        return [MetricQuery(f"{prefix}{i}", ns, m, s, dims, period)
                for i, (ns, m, s) in enumerate(specs)]  # fmt: skip

    return build(plain, "q"), build(pct, "p")


ASYNC_QUEUE = ("ApproximateBacklogSize", "ApproximateBacklogSizePerInstance",
               "ApproximateAgeOfOldestRequest", "HasBacklogWithoutCapacity")  # fmt: skip
ASYNC_COUNTS = ("InvocationsProcessed", "Invocation4XXErrors", "Invocation5XXErrors")
ASYNC_LATENCIES = ("ModelLatency", "TimeInBacklog", "TotalProcessingTime")


def async_queries(endpoint: str, variant: str, period: int) -> list[MetricQuery]:
    """An asynchronous endpoint's metrics (SageMaker's "Monitor asynchronous endpoint"
    page): the queue's per endpoint (EndpointName), the rest per variant. Invocations,
    InvocationsPerInstance and OverheadLatency are not published for async endpoints."""
    endpoint_dims: tuple[tuple[str, str], ...] = (("EndpointName", endpoint),)
    dims: tuple[tuple[str, str], ...] = (("EndpointName", endpoint), ("VariantName", variant))
    specs: list[tuple[str, str, tuple[tuple[str, str], ...]]] = [
        (m, s, endpoint_dims) for m in ASYNC_QUEUE for s in ("Average", "Maximum")
    ]
    specs += [(m, "Sum", dims) for m in ASYNC_COUNTS]
    specs += [(m, s, dims) for m in ASYNC_LATENCIES for s in LATENCY_STATS]
    return [MetricQuery(f"a{i}", SAGEMAKER_NS, m, s, d, period)
            for i, (m, s, d) in enumerate(specs)]  # fmt: skip


def rows(points: Iterable[Datapoint]) -> list[dict[str, Any]]:
    """Datapoints as table rows, in time then metric order."""
    out = [
        {
            "metric": p.query.metric,
            "stat": p.query.stat,
            "timestamp": p.timestamp.astimezone(timezone.utc).isoformat(),
            "value": p.value,
            "unit": UNITS.get(p.query.metric, "None"),
            "period": p.query.period,
        }
        for p in points
    ]
    return sorted(out, key=lambda r: (r["timestamp"], r["metric"], r["stat"]))


def to_csv(table: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def epoch_seconds(text: str) -> float:
    """A timestamp as epoch seconds: a number as is, else ISO 8601 ("Z" or an offset; with
    neither, UTC, which is what CloudWatch speaks). ValueError when it is neither."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


# What reading a row that is not a CloudWatch datapoint raises.
BAD_ROW = (KeyError, TypeError, ValueError, AttributeError)


def _parse_row(r: Mapping[str, Any], default_period: int | None) -> dict[str, Any]:
    """One csv.DictReader row (a short row holds None: AttributeError or TypeError)."""
    value = float(r["value"])
    period = r.get("period") or default_period
    if period is None:
        raise KeyError("period")
    return {
        "metric": r["metric"].strip(),
        "stat": r["stat"].strip(),
        "timestamp": r["timestamp"],
        "value": value,
        "unit": (r.get("unit") or "").strip(),
        "period": int(float(period)),
        "epoch": epoch_seconds(r["timestamp"]),
    }


def parse_csv(text: str, lenient: bool = False) -> list[dict[str, Any]]:
    """Rows of a CloudWatch CSV (CSV_COLUMNS): `value` a float, `period` an int, `epoch` the
    timestamp in epoch seconds, `unit` as written ("" when absent).

    Strict (the collector's own cloudwatch.csv): every row must read, with its period; the
    first that does not raises one of BAD_ROW. `lenient` (any CSV a user drops in the run
    directory, for the report): a missing period is DEFAULT_PERIOD, and rows that do not
    read, or whose value is not finite, are skipped rather than failing the report.
    """
    out = []
    for r in csv.DictReader(io.StringIO(text)):
        try:
            row = _parse_row(r, DEFAULT_PERIOD if lenient else None)
        except BAD_ROW:
            if lenient:
                continue
            raise
        if not lenient or math.isfinite(row["value"]):
            out.append(row)
    return out


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a cloudwatch.csv (`parse_csv`, strict); [] when there is none; RunDirError
    naming the file when it is not ours."""
    if not path.exists():
        return []
    try:
        return parse_csv(path.read_text(encoding="utf-8"))
    except BAD_ROW as exc:
        raise RunDirError(
            f"{path} is not a CloudWatch table ({type(exc).__name__}: {exc})",
            f"re-collect it with `recommender collect {path.parent}`",
        ) from exc


@dataclass(frozen=True)
class ServerStage:
    """A stage seen from CloudWatch: only periods wholly inside the stage count."""

    periods: int
    seconds: int
    invocations: float | None
    invocations_rps: float | None
    errors_4xx: float | None
    errors_5xx: float | None
    model_latency_ms: float | None  # mean over the stage, weighted by sample count
    overhead_latency_ms: float | None
    model_latency_max_ms: float | None
    # Per percentile statistic, the highest of the stage's periods (a percentile of a whole
    # stage cannot be rebuilt from per-period ones; the worst period bounds it from above).
    model_latency_pct_ms: dict[str, float]
    cpu_percent: float | None
    concurrency_per_copy: float | None  # an inference component's: mean of the periods
    start: float  # epoch of the first period counted
    end: float


def join_stages(
    table: Sequence[dict[str, Any]], windows: Sequence[tuple[float, float]]
) -> list[ServerStage | None]:
    """Per stage window (epoch start, end): the CloudWatch periods that lie wholly inside.

    A period straddling two stages carries load from both, so it is attributed to neither.
    """
    out: list[ServerStage | None] = []
    for start, end in windows:
        inside = [r for r in table if r["epoch"] >= start and r["epoch"] + r["period"] <= end]
        out.append(_stage_view(inside) if inside else None)
    return out


def _values(rows: Sequence[dict[str, Any]], metric: str, stat: str) -> list[float]:
    return [r["value"] for r in rows if r["metric"] == metric and r["stat"] == stat]


def _weighted_ms(rows: Sequence[dict[str, Any]], metric: str) -> float | None:
    """Mean latency over several periods: each period's Average weighted by its SampleCount."""
    by_ts: dict[float, dict[str, float]] = {}
    for r in rows:
        if r["metric"] == metric:
            by_ts.setdefault(r["epoch"], {})[r["stat"]] = r["value"]
    pairs = [(d["Average"], d["SampleCount"]) for d in by_ts.values() if d.get("SampleCount")
             and "Average" in d]  # fmt: skip
    n = sum(c for _, c in pairs)
    return sum(a * c for a, c in pairs) / n / 1000.0 if n else None


def _stage_view(inside: Sequence[dict[str, Any]]) -> ServerStage:
    stamps = sorted({r["epoch"] for r in inside})
    period = int(inside[0]["period"])
    seconds = len(stamps) * period

    def total(metric: str) -> float | None:
        vals = _values(inside, metric, "Sum")
        return float(sum(vals)) if vals else None

    inv = total("Invocations")
    peaks = _values(inside, "ModelLatency", "Maximum")
    cpu = _values(inside, "CPUUtilization", "Average") or _values(
        inside, "CPUUtilizationNormalized", "Average")
    concurrency = _values(inside, CONCURRENCY, "Average")
    return ServerStage(
        periods=len(stamps),
        seconds=seconds,
        invocations=inv,
        invocations_rps=inv / seconds if inv is not None else None,
        errors_4xx=total("Invocation4XXErrors"),
        errors_5xx=total("Invocation5XXErrors"),
        model_latency_ms=_weighted_ms(inside, "ModelLatency"),
        overhead_latency_ms=_weighted_ms(inside, "OverheadLatency"),
        model_latency_max_ms=max(peaks) / 1000.0 if peaks else None,
        model_latency_pct_ms={
            stat: max(vals) / 1000.0
            for stat in PERCENTILE_STATS
            if (vals := _values(inside, "ModelLatency", stat))
        },
        cpu_percent=sum(cpu) / len(cpu) if cpu else None,
        concurrency_per_copy=sum(concurrency) / len(concurrency) if concurrency else None,
        start=stamps[0],
        end=stamps[-1] + period,
    )


def default_period(stage_seconds: float) -> int:
    """60 s on AWS; shorter (high resolution) only when stages are too short for minutes."""
    for p in (60, 30, 10, 5, 1):
        if stage_seconds >= 2 * p + p:  # room for two whole periods whatever the offset
            return p
    return 1
