"""CloudWatch's percentile statistics in the AWS emulator.

SageMaker's ModelLatency and OverheadLatency have percentiles in CloudWatch (p50, p99, any
pNN.N), computed from the values published, and `collect` asks for them (and `analyze
--slo-source server` judges the SLO on them). moto 5 answers only the five plain statistics:
a percentile query fails the whole GetMetricData call (HTTP 500), and a datum of Values/
Counts becomes one stored object per count (a minute at 1,000 requests/s: 60,000 objects,
each scanned by every later query).

`PercentileStatistics.install` adjusts moto in the emulator's process: a datum of Values/
Counts is stored as one object that keeps them (and its statistic set, so Sum, Average,
SampleCount, Minimum and Maximum come out as before), a pNN statistic is the value at that
rank of a period's values and counts, and a period with no values (only statistic sets, from
which CloudWatch cannot give percentiles either) has no datapoint, as in CloudWatch.
"""

from __future__ import annotations

import re
from typing import Any

from recommender.local.emulator_app import Extension

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


def percentile(values: list[float], counts: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) of values occurring counts times: the smallest value with
    at least q% of the total count at or below it (nearest rank); None with no values."""
    pairs = sorted((v, c) for v, c in zip(values, counts, strict=True) if c > 0)
    total = sum(c for _, c in pairs)
    if not pairs:
        return None
    rank = q / 100.0 * total
    seen = 0.0
    for v, c in pairs:
        seen += c
        if seen >= rank:
            return v
    return pairs[-1][0]


class PercentileStatistics(Extension):
    """No operations of its own: it teaches moto's CloudWatch percentiles (`install`)."""

    def operations(self) -> dict[str, Any]:
        return {}

    def install(self) -> None:
        from moto.cloudwatch import models

        class Distribution(models.MetricAggregatedDatum):
            """A datum published as Values/Counts, kept whole."""

            def __init__(self, namespace: str, m: dict[str, Any]) -> None:
                values = [float(v) for v in m["Values"]]
                counts = [float(c) for c in m.get("Counts") or [1.0] * len(values)]
                super().__init__(
                    namespace, m["MetricName"], min(values), max(values), sum(counts),
                    sum(v * c for v, c in zip(values, counts, strict=True)),
                    m.get("Dimensions", []), m.get("Timestamp"), m.get("Unit"),
                )  # fmt: skip
                self.values, self.counts = values, counts

        moto_put = models.CloudWatchBackend.put_metric_data
        moto_get = models.CloudWatchBackend.get_metric_data
        moto_stat = models.Statistics.get_statistics_for_type

        def put_metric_data(
            backend: Any, namespace: str, metric_data: list[dict[str, Any]]
        ) -> None:
            for i, m in enumerate(metric_data):  # moto's own checks first, for every datum
                backend._validate_parameters_put_metric_data(m, i + 1)
            moto_put(backend, namespace, [m for m in metric_data if not m.get("Values")])
            backend.metric_data += [Distribution(namespace, m) for m in metric_data
                                    if m.get("Values")]  # fmt: skip

        def get_statistics_for_type(stats: Any, stat: str) -> Any:
            match = _PERCENTILE.fullmatch(stat)
            if match is None:
                return moto_stat(stats, stat)
            values: list[float] = []
            counts: list[float] = []
            for d in stats.metric_data:
                if isinstance(d, Distribution):
                    values += d.values
                    counts += d.counts
                elif isinstance(d, models.MetricDatum):
                    values.append(d.value)
                    counts.append(1.0)
            return percentile(values, counts, float(match.group(1)))

        def get_metric_data(backend: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            results: list[dict[str, Any]] = moto_get(backend, *args, **kwargs)
            for r in results:  # a period without values has no percentile: no datapoint
                kept = [(t, v) for t, v in zip(r["timestamps"], r["values"], strict=True)
                        if v is not None]  # fmt: skip
                r["timestamps"] = [t for t, _ in kept]
                r["values"] = [v for _, v in kept]
            return results

        models.CloudWatchBackend.put_metric_data = put_metric_data  # type: ignore[method-assign,assignment]
        models.Statistics.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign,assignment]
        models.CloudWatchBackend.get_metric_data = get_metric_data  # type: ignore[method-assign,assignment]
