"""CloudWatch's percentile statistics, as the AWS emulator answers them over HTTP
(recommender.local.cw_emulator), and the publisher's values that feed them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from recommender.aws import AwsClient
from recommender.cloudwatch import MetricQuery
from recommender.local.cw_emulator import percentile
from recommender.local.emulator import running_emulator

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
DIMS = (("EndpointName", "ep"), ("VariantName", "AllTraffic"))


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsClient]:
    from tests.conftest import use_emulator_credentials

    with pytest.MonkeyPatch.context() as mp:
        use_emulator_credentials(mp, tmp_path_factory.mktemp("aws"))
        with running_emulator() as url:
            yield AwsClient.create("us-east-1", endpoint_url=url)


def datum(name: str, at: datetime, **values: object) -> dict[str, object]:
    return {"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in DIMS],
            "Timestamp": at, "Unit": "Microseconds", "StorageResolution": 1, **values}  # fmt: skip


def test_nearest_rank_percentile() -> None:
    assert percentile([3.0, 1.0, 2.0], [1, 1, 1], 50) == 2.0
    assert percentile([10.0, 20.0], [95, 5], 95) == 10.0  # 95 of 100 at or below 10
    assert percentile([10.0, 20.0], [94, 6], 95) == 20.0
    assert percentile([10.0, 20.0], [0, 0], 50) is None


def test_percentiles_of_published_values(aws: AwsClient) -> None:
    # Second 0: 1..100 ms, once each, published in two datums (two PutMetricData calls, as
    # the publisher sends them). Second 1: a statistic set only, from which CloudWatch has
    # no percentiles. Second 2: plain values.
    values = [float(v * 1000) for v in range(1, 101)]
    aws.put_metric_data("AWS/SageMaker", [
        datum("ModelLatency", T0, Values=values[:50], Counts=[1.0] * 50),
        datum("ModelLatency", T0, Values=values[50:], Counts=[1.0] * 50),
        datum("ModelLatency", T0 + timedelta(seconds=1),
              StatisticValues={"SampleCount": 2, "Sum": 3000, "Minimum": 1000, "Maximum": 2000}),
        datum("ModelLatency", T0 + timedelta(seconds=2), Value=7000.0),
    ])  # fmt: skip
    stats = ("p50", "p95", "p99.9", "Average", "SampleCount", "Maximum")
    queries = [MetricQuery(f"q{i}", "AWS/SageMaker", "ModelLatency", s, DIMS, 1)
               for i, s in enumerate(stats)]  # fmt: skip
    points = aws.get_metric_data(queries, T0, T0 + timedelta(seconds=3), best_effort=True)
    got = {(p.query.stat, int((p.timestamp - T0).total_seconds())): p.value for p in points}
    assert {k: v for k, v in got.items() if k[1] == 0} == {
        ("p50", 0): 50_000, ("p95", 0): 95_000, ("p99.9", 0): 100_000,
        ("Average", 0): 50_500, ("SampleCount", 0): 100, ("Maximum", 0): 100_000}  # fmt: skip
    assert ("p95", 1) not in got and got[("Average", 1)] == 1500
    assert got[("p95", 2)] == 7000 and got[("SampleCount", 2)] == 1
