"""CloudWatch's plain data: what to ask for (MetricQuery) and what comes back (Datapoint).

Kept apart from `recommender.aws` (which imports boto3) so that the pure side (metrics,
analysis) can name these types without reaching boto3; aws.py imports them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class MetricQuery:
    """One CloudWatch series: namespace/metric/dimensions at a statistic and period."""

    id: str
    namespace: str
    metric: str
    stat: str
    dimensions: tuple[tuple[str, str], ...]
    period: int

    def to_api(self) -> dict[str, Any]:
        """The query as GetMetricData's MetricDataQueries item."""
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


@dataclass(frozen=True)
class Datapoint:
    query: MetricQuery
    timestamp: datetime
    value: float
