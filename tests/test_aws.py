"""Request shapes against botocore's service models (Stubber), and error mapping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from recommender import metrics
from recommender.aws import AwsClient, aligned
from recommender.cloudwatch import MetricQuery
from recommender.errors import AwsError, EndpointError

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def aws() -> AwsClient:
    session = boto3.session.Session(
        aws_access_key_id="AKID", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    return AwsClient(session)


def stub(aws: AwsClient, service: str, best_effort: bool = False) -> Stubber:
    return Stubber(aws.client(service, best_effort))


def test_describe_endpoint_reads_variants_and_instance_types(aws: AwsClient) -> None:
    with stub(aws, "sagemaker") as s:
        s.add_response(
            "describe_endpoint",
            {
                "EndpointName": "ep", "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/ep",
                "EndpointConfigName": "cfg", "EndpointStatus": "InService",
                "CreationTime": T0, "LastModifiedTime": T0,
                "ProductionVariants": [
                    {"VariantName": "A", "CurrentInstanceCount": 3, "DesiredInstanceCount": 3},
                    {"VariantName": "B", "CurrentInstanceCount": 1, "DesiredInstanceCount": 2},
                ],
            },
            {"EndpointName": "ep"},
        )  # fmt: skip
        s.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "cfg", "CreationTime": T0,
                "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/cfg",
                "ProductionVariants": [
                    {"VariantName": "A", "ModelName": "m", "InstanceType": "ml.g5.xlarge"},
                    {"VariantName": "B", "ModelName": "m", "InstanceType": "ml.m5.large"},
                ],
            },
            {"EndpointConfigName": "cfg"},
        )  # fmt: skip
        info = aws.describe_endpoint("ep")
    assert info.status == "InService"
    assert info.variant("A").instance_type == "ml.g5.xlarge"
    assert info.variant("B").current_instance_count == 1
    with pytest.raises(EndpointError, match="has variants A, B"):
        info.variant(None)
    with pytest.raises(EndpointError, match="no variant 'C'"):
        info.variant("C")


def test_missing_endpoint_is_an_endpoint_error(aws: AwsClient) -> None:
    with stub(aws, "sagemaker") as s:
        s.add_client_error(
            "describe_endpoint", "ValidationException", 'Could not find endpoint "nope".'
        )
        with pytest.raises(EndpointError) as info:
            aws.describe_endpoint("nope")
    assert info.value.one_line() == (
        "no endpoint named 'nope' in eu-west-1 (check --endpoint and --region)"
    )


def test_access_denied_says_what_to_fix(aws: AwsClient) -> None:
    with stub(aws, "sagemaker") as s:
        s.add_client_error("describe_endpoint", "AccessDeniedException", "not allowed")
        with pytest.raises(AwsError) as info:
            aws.describe_endpoint("ep")
    assert "AccessDeniedException: not allowed" in info.value.message
    assert info.value.hint == "the credentials lack this permission: check the IAM policy"


def test_no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(AwsError) as info:
        AwsClient.create()
    assert info.value.one_line() == "No region (pass --region or set AWS_DEFAULT_REGION)"


def test_get_metric_data_shapes_and_pages(aws: AwsClient) -> None:
    plain, percentiles = metrics.queries("ep", "AllTraffic", 60)
    assert {q.stat for q in percentiles} == {"p50", "p90", "p95", "p99"}
    start, end = aligned(T0.timestamp() + 5, 60), aligned(T0.timestamp() + 125, 60, up=True)
    assert (start, end) == (T0, T0 + timedelta(minutes=3))
    q = plain[0]
    with stub(aws, "cloudwatch") as s:
        expected: dict[str, Any] = {
            "MetricDataQueries": [x.to_api() for x in plain],
            "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending",
        }  # fmt: skip
        s.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": q.id, "Label": "x", "Timestamps": [T0],
                                    "Values": [10.0], "StatusCode": "PartialData"}],
             "NextToken": "more"},
            expected,
        )  # fmt: skip
        s.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": q.id, "Label": "x",
                                    "Timestamps": [T0 + timedelta(minutes=1)],
                                    "Values": [12.0], "StatusCode": "Complete"}]},
            {**expected, "NextToken": "more"},
        )  # fmt: skip
        points = aws.get_metric_data(plain, start, end)
    assert [(p.query.metric, p.value) for p in points] == [("Invocations", 10), ("Invocations", 12)]
    table = metrics.rows(points)
    assert table[0]["unit"] == "Count" and table[0]["timestamp"] == "2026-11-23T12:00:00+00:00"


def test_put_metric_data_and_create_endpoint_shapes(aws: AwsClient) -> None:
    from recommender.local.publisher import MetricBuckets, PublishConfig

    buckets = MetricBuckets(PublishConfig("ep", period=60), instances=2)
    buckets.record(T0.timestamp() + 1, 200, 20_000, 50)
    buckets.record(T0.timestamp() + 2, 503, 0, 0)
    data = buckets.drain(T0.timestamp() + 61, cpu=50.0, memory=10.0)
    with stub(aws, "cloudwatch") as s:
        for ns in ("AWS/SageMaker", "/aws/sagemaker/Endpoints"):
            mine = [d for n, d in data if n == ns]
            # The statistics in one call; each latency's values in a call of its own.
            for batch in ([d for d in mine if "Values" not in d],
                          *([d] for d in mine if "Values" in d)):  # fmt: skip
                s.add_response("put_metric_data", {}, {"Namespace": ns, "MetricData": batch})
            aws.put_metric_data(ns, mine)
        s.assert_no_pending_responses()
    with stub(aws, "sagemaker") as s:
        s.add_response(
            "create_model",
            {"ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/ep-model"},
            {"ModelName": "ep-model", "ExecutionRoleArn": ANY,
             "PrimaryContainer": {"Image": "x:latest"}},
        )  # fmt: skip
        s.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/c"},
            {"EndpointConfigName": "ep-config", "ProductionVariants": [
                {"VariantName": "AllTraffic", "ModelName": "ep-model",
                 "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]},
        )  # fmt: skip
        s.add_response(
            "create_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/ep"},
            {"EndpointName": "ep", "EndpointConfigName": "ep-config"},
        )
        aws.create_endpoint("ep", "AllTraffic", "ml.m5.large", 1, image="x:latest")
        s.assert_no_pending_responses()  # all three calls made, in this order


def test_metric_query_to_api() -> None:
    q = MetricQuery("q0", "AWS/SageMaker", "ModelLatency", "p99", (("EndpointName", "e"),), 60)
    assert q.to_api()["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "EndpointName",
                                                                  "Value": "e"}]  # fmt: skip


def test_describe_calls_follow_pages(aws: AwsClient) -> None:
    """Application Auto Scaling's and CloudWatch's listings come back whole, page by page."""
    rid, dim = "endpoint/ep/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount"
    target = {"ServiceNamespace": "sagemaker", "ResourceId": rid, "ScalableDimension": dim,
              "MinCapacity": 1, "MaxCapacity": 4, "RoleARN": "arn:aws:iam::1:role/r",
              "CreationTime": T0}  # fmt: skip
    query = {"ServiceNamespace": "sagemaker", "ResourceIds": [rid], "ScalableDimension": dim}
    with stub(aws, "application-autoscaling") as s:
        s.add_response("describe_scalable_targets",
                       {"ScalableTargets": [target], "NextToken": "t2"}, query)  # fmt: skip
        s.add_response("describe_scalable_targets",
                       {"ScalableTargets": [{**target, "MaxCapacity": 8}]},
                       {**query, "NextToken": "t2"})  # fmt: skip
        got = aws.describe_scalable_targets("sagemaker", rid, dim)
    assert [t["MaxCapacity"] for t in got] == [4, 8]
    with stub(aws, "cloudwatch") as c:
        first = {"MetricAlarms": [{"AlarmName": "a"}], "NextToken": "n"}
        c.add_response("describe_alarms", first, {"AlarmNames": ["a", "b"]})
        c.add_response("describe_alarms", {"MetricAlarms": [{"AlarmName": "b"}]},
                       {"AlarmNames": ["a", "b"], "NextToken": "n"})  # fmt: skip
        assert [a["AlarmName"] for a in aws.describe_alarms(["a", "b"])] == ["a", "b"]


def test_a_failing_page_is_our_error(aws: AwsClient) -> None:
    with stub(aws, "application-autoscaling") as s:
        s.add_client_error("describe_scaling_policies", "AccessDeniedException", "no")
        with pytest.raises(AwsError) as info:
            aws.describe_scaling_policies("sagemaker", "endpoint/ep/variant/v", "d")
    assert info.value.one_line() == (
        "DescribeScalingPolicies endpoint/ep/variant/v failed: AccessDeniedException: no "
        "(the credentials lack this permission: check the IAM policy)"
    )


def test_datums_with_values_go_in_calls_of_their_own(aws: AwsClient) -> None:
    """PutMetricData: up to 1000 datums a call, but a call with a Values array may hold only
    150 distinct values in all, so each datum with values is sent alone."""
    plain = [{"MetricName": f"m{i}", "Value": 1.0} for i in range(1001)]
    values = [{"MetricName": "ModelLatency", "Values": [float(v)], "Counts": [2.0]}
              for v in (1, 2)]  # fmt: skip
    with stub(aws, "cloudwatch") as s:
        for batch in (plain[:1000], plain[1000:], values[:1], values[1:]):
            s.add_response("put_metric_data", {}, {"Namespace": "N", "MetricData": batch})
        aws.put_metric_data("N", [values[0], *plain, values[1]])
        s.assert_no_pending_responses()
