"""The local scaler's target-tracking rules (pure), and the AWS calls verify makes for what
the emulator lacks, checked against botocore's service model with Stubber."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.stub import Stubber

from recommender.aws import AwsClient
from recommender.local.autoscaler import Alarms, Track, decide, next_tick
from recommender.simulate import DEFAULT_SCALE_IN_DATAPOINTS, DEFAULT_SCALE_OUT_DATAPOINTS

ALARMS = Alarms("high", "low", 600.0, 540.0, DEFAULT_SCALE_OUT_DATAPOINTS,
                DEFAULT_SCALE_IN_DATAPOINTS)  # fmt: skip


def step(track: Track, metric: float | None, per_minute: float | None, *, desired: int = 2,
         now: float = 0.0, lo: int = 1, hi: int = 10, out_cd: float = 0.0,
         in_cd: float = 0.0) -> tuple[str, int] | None:  # fmt: skip
    d = decide(track, metric=metric, per_minute=per_minute, target=600.0, lo=lo, hi=hi,
               desired=desired, now=now, out_cooldown_s=out_cd, in_cooldown_s=in_cd,
               disable_in=False)  # fmt: skip
    return None if d is None else (d.kind, d.to_desired)


def test_scale_out_after_three_datapoints_above_target_to_the_proportional_count() -> None:
    track = Track(alarms=ALARMS)
    assert step(track, 900, 1800) is None
    assert step(track, 900, 1800) is None
    assert track.high_state == "OK"
    assert step(track, 900, 1800) == ("out", 3)  # ceil(1800 / 600)
    assert track.high_state == "ALARM"
    # The alarm acts every minute it stays in ALARM, only for more than the desired count.
    assert step(track, 900, 1800, desired=3) is None
    assert step(track, 1000, 3000, desired=3) == ("out", 5)
    assert step(track, 5000, 50000, desired=5) == ("out", 10)  # MaxCapacity


def test_a_minute_without_data_breaks_the_run() -> None:
    track = Track(alarms=ALARMS)
    step(track, 900, 1800)
    step(track, 900, 1800)
    assert step(track, None, None) is None and track.high_state == "INSUFFICIENT_DATA"
    assert step(track, 900, 1800) is None


def test_scale_in_after_fifteen_datapoints_below_ninety_percent_and_the_cooldowns() -> None:
    track = Track(alarms=ALARMS)
    for _ in range(DEFAULT_SCALE_IN_DATAPOINTS - 1):
        assert step(track, 100, 400, desired=4) is None
    assert step(track, 100, 400, desired=4) == ("in", 1)
    # 545 is not below 90% of 600: no scale-in, and the run starts over.
    track = Track(alarms=ALARMS)
    for _ in range(20):
        assert step(track, 545, 1090, desired=4) is None
    # The scale-in cooldown holds the next scale-in back, not a scale-out.
    track = Track(alarms=ALARMS)
    for i in range(DEFAULT_SCALE_IN_DATAPOINTS):
        got = step(track, 100, 1000, desired=4, now=float(i), in_cd=300.0)
    assert got == ("in", 2)
    assert step(track, 100, 600, desired=2, now=20.0, in_cd=300.0) is None
    assert step(track, 100, 600, desired=2, now=400.0, in_cd=300.0) == ("in", 1)


def test_scale_out_cooldown_holds_scale_in_back() -> None:
    track = Track(alarms=ALARMS)
    for _ in range(3):
        got = step(track, 900, 1800, now=0.0, out_cd=300.0)
    assert got == ("out", 3)
    for i in range(DEFAULT_SCALE_IN_DATAPOINTS):
        assert step(track, 10, 30, desired=3, now=1.0 + i, out_cd=300.0) is None
    assert step(track, 10, 30, desired=3, now=301.0, out_cd=300.0) == ("in", 1)


def test_a_desired_count_outside_the_bounds_is_brought_within_them() -> None:
    assert step(Track(alarms=ALARMS), 600, 600, desired=1, lo=2) == ("bounds", 2)
    assert step(Track(alarms=ALARMS), 600, 600, desired=12, hi=10) == ("bounds", 10)


def test_emulated_minutes_line_up_with_whole_periods() -> None:
    assert next_tick(100.0, 2.0) == 102.0
    assert next_tick(101.5, 2.0) == 102.0
    assert next_tick(119.0, 60.0) == 120.0


def test_the_calls_verify_makes_have_aws_shapes() -> None:
    """DescribeScalingActivities and DescribeAlarms by prefix, SetAlarmState and
    GetMetricStatistics: the emulator answers them (or our extension does), so their
    request and response shapes are checked against botocore's model here."""
    aws = AwsClient.create("us-east-1")
    scaling = aws.client("application-autoscaling")
    cw = aws.client("cloudwatch")
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rid = "endpoint/e/variant/AllTraffic"
    with Stubber(scaling) as s_as, Stubber(cw) as s_cw:
        s_as.add_response("describe_scaling_activities", {"ScalingActivities": [{
            "ActivityId": "a", "ServiceNamespace": "sagemaker", "ResourceId": rid,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "Description": "Setting desired instance count to 3.", "Cause": "alarm",
            "StartTime": t, "EndTime": t, "StatusCode": "Successful"}]},
            {"ServiceNamespace": "sagemaker", "ResourceId": rid,
             "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"})  # fmt: skip
        s_cw.add_response("describe_alarms", {"MetricAlarms": [{
            "AlarmName": f"TargetTracking-{rid}-AlarmHigh-1", "StateValue": "ALARM",
            "Threshold": 480.0, "EvaluationPeriods": 3, "DatapointsToAlarm": 3}]},
            {"AlarmNamePrefix": f"TargetTracking-{rid}-"})  # fmt: skip
        s_cw.add_response("set_alarm_state", {}, {"AlarmName": "x", "StateValue": "OK",
                                                  "StateReason": "r"})  # fmt: skip
        s_cw.add_response("get_metric_statistics", {"Datapoints": [{"Sum": 5.0}, {"Sum": 7.0}]},
                          {"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                           "StartTime": t, "EndTime": t, "Period": 1, "Statistics": ["Sum"],
                           "Dimensions": [{"Name": "EndpointName", "Value": "e"}]})  # fmt: skip
        acts = aws.describe_scaling_activities("sagemaker", rid,
                                               "sagemaker:variant:DesiredInstanceCount")
        assert acts[0]["StatusCode"] == "Successful"
        assert aws.alarms_with_prefix(f"TargetTracking-{rid}-")[0]["StateValue"] == "ALARM"
        aws.set_alarm_state("x", "OK", "r")
        assert aws.metric_sum("AWS/SageMaker", "Invocations", {"EndpointName": "e"}, t, t,
                              1) == pytest.approx(12.0)  # fmt: skip
