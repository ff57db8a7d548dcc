"""Exact unit tests of the pure policy modules: `policy.diff` (what a change shows, which
fields are compared, the order rollback restores in) and `policy.target` (the target value,
Little's law, why a run is not trusted). Written against mutation-testing survivors."""

from __future__ import annotations

from typing import Any

import pytest

from recommender.errors import ConfigError, InsufficientDataError
from recommender.policy.diff import (
    Change,
    alarm_fields,
    describe_metric,
    diff,
    policy_fields,
    restore_calls,
    show,
)
from recommender.policy.kinds import Kind, Metric
from recommender.policy.state import (
    AlarmState,
    Call,
    PolicyState,
    Scope,
    State,
    TargetState,
    put_alarm,
    put_policy,
    scope_params,
)
from recommender.policy.target import (
    RunFacts,
    check_trust,
    concurrency_target,
    round_target,
    target_value_for,
    trust_problems,
)

RES = "endpoint/ep/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
SCOPE = Scope(RES, DIM)
COMMON = scope_params(RES, DIM)
AAS = "application-autoscaling"


def tt(name: str, value: float, arn: str | None = None, **extra: Any) -> PolicyState:
    conf = {"TargetValue": value, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}, **extra}  # fmt: skip
    return PolicyState(name, "TargetTrackingScaling", conf, arn)


def alarm(name: str, threshold: float = 5.0, policy: str | None = None,
          actions: tuple[str, ...] = ()) -> AlarmState:  # fmt: skip
    params = {"MetricName": "CPUUtilization", "Statistic": "Average",
              "ComparisonOperator": "GreaterThanThreshold", "Threshold": threshold,
              "DatapointsToAlarm": 2, "EvaluationPeriods": 3, "Period": 60}  # fmt: skip
    return AlarmState(name, params, actions, policy)


# --- diff.py: rendering ------------------------------------------------------------------


def test_show_each_kind_of_value() -> None:
    assert show(None) == "(default)"
    assert show(True) == "true"
    assert show(False) == "false"
    assert show(300.0) == "300"
    assert show(1.5) == "1.5"
    assert show(-3.0) == "-3"
    assert show(999999.0) == "999999"
    assert show(1e6) == "1000000.0"  # from 1e6 on, not "1e+06"
    assert show(2500000.0) == "2500000.0"
    assert show(-2e6) == "-2000000.0"
    assert show(7) == "7"
    assert show("x") == "x"


def test_describe_metric() -> None:
    assert describe_metric({"PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}) == (
        "SageMakerVariantInvocationsPerInstance")  # fmt: skip
    custom = {"CustomizedMetricSpecification": {
        "Namespace": "AWS/SageMaker", "MetricName": "ConcurrentRequestsPerModel",
        "Statistic": "Average", "Dimensions": [{"Name": "EndpointName", "Value": "ep"},
                                               {"Name": "VariantName", "Value": "AllTraffic"}]}}
    assert describe_metric(custom) == (
        "AWS/SageMaker/ConcurrentRequestsPerModel (Average; "
        "EndpointName=ep,VariantName=AllTraffic)"
    )
    # An empty predefined specification falls through to the customized one.
    assert describe_metric({"PredefinedMetricSpecification": {}, **custom}).startswith("AWS/")
    assert describe_metric({"CustomizedMetricSpecification": {
        "Namespace": "N", "MetricName": "M", "Statistic": "Maximum", "Dimensions": None}}) == (
        "N/M (Maximum; )")  # fmt: skip
    assert describe_metric({"CustomizedMetricSpecification": {
        "Namespace": "N", "MetricName": "M", "Statistic": "Sum"}}) == "N/M (Sum; )"
    assert describe_metric({}) == "(none)"
    assert describe_metric({"CustomizedMetricSpecification": {}}) == "(none)"


def test_policy_fields() -> None:
    assert policy_fields(None) == {}
    step = PolicyState("s", "StepScaling", {"b": 1, "a": [2.0]})
    assert policy_fields(step) == {
        "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": '{"a": [2.0], "b": 1}'}
    full = policy_fields(tt("p", 3000.0, ScaleInCooldown=300, ScaleOutCooldown=60.0,
                            DisableScaleIn=True))  # fmt: skip
    assert list(full.items()) == [
        ("PolicyType", "TargetTrackingScaling"),
        ("metric", "SageMakerVariantInvocationsPerInstance"),
        ("TargetValue", "3000"),
        ("ScaleInCooldown", "300"),
        ("ScaleOutCooldown", "60"),
        ("DisableScaleIn", "true"),
    ]
    bare = policy_fields(PolicyState("p", "TargetTrackingScaling", {}))
    assert bare == {"PolicyType": "TargetTrackingScaling", "metric": "(none)",
                    "TargetValue": "(default)", "ScaleInCooldown": "(default)",
                    "ScaleOutCooldown": "(default)", "DisableScaleIn": "false"}  # fmt: skip


def test_alarm_fields() -> None:
    assert alarm_fields(None) == {}
    assert alarm_fields(alarm("a", 5.5, policy="pol", actions=("arn:x",))) == {
        "rule": "CPUUtilization Average GreaterThanThreshold 5.5",
        "datapoints": "2 of 3 x 60 s",
        "action": "policy pol",
    }
    assert alarm_fields(alarm("a", actions=("arn:x", "arn:y")))["action"] == "arn:x, arn:y"
    assert alarm_fields(alarm("a"))["action"] == "(none)"
    assert alarm_fields(AlarmState("a", {})) == {
        "rule": "None None None (default)", "datapoints": "None of None x None s",
        "action": "(none)"}  # fmt: skip


# --- diff.py: diff -----------------------------------------------------------------------


def test_diff_target() -> None:
    def st(t: TargetState | None) -> State:
        return State(SCOPE, t)

    assert diff(st(TargetState(1, 2)), st(TargetState(1, 4))) == [
        Change("scalable target", "MaxCapacity", "2", "4")]
    assert diff(st(TargetState(1, 2)), st(TargetState(3, 2))) == [
        Change("scalable target", "MinCapacity", "1", "3")]
    assert diff(st(None), st(TargetState(1, 2))) == [
        Change("scalable target", "MinCapacity", "(none)", "1"),
        Change("scalable target", "MaxCapacity", "(none)", "2")]
    # A plan that names no target leaves the one there alone, unless exact (rollback).
    assert diff(st(TargetState(1, 2)), st(None)) == []
    assert diff(st(TargetState(1, 2)), st(None), exact=True) == [
        Change("scalable target", "MinCapacity", "1", "(none)"),
        Change("scalable target", "MaxCapacity", "2", "(none)")]
    assert diff(st(TargetState(1, 2)), st(TargetState(1, 2)), exact=True) == []
    assert diff(st(None), st(None), exact=True) == []
    # The suspended state is not compared (the plan leaves it as it is).
    assert diff(st(TargetState(1, 2, {"DynamicScalingInSuspended": True})),
                st(TargetState(1, 2))) == []  # fmt: skip


def test_diff_policies() -> None:
    t = TargetState(1, 2)
    current = State(SCOPE, t, (tt("a", 10.0), tt("b", 20.0), tt("c", 30.0)))
    wanted = State(SCOPE, t, (tt("c", 30.0), tt("a", 11.0), tt("n", 5.0)))
    new_fields = [Change("policy n", k, "(none)", v)
                  for k, v in policy_fields(tt("n", 5.0)).items()]
    assert diff(current, wanted) == [
        Change("policy a", "TargetValue", "10", "11"), *new_fields]
    gone_fields = [Change("policy b", k, v, "(none)")
                   for k, v in policy_fields(tt("b", 20.0)).items()]  # fmt: skip
    assert diff(current, wanted, exact=True) == [
        Change("policy a", "TargetValue", "10", "11"), *new_fields, *gone_fields]
    # Only the fields that differ, in the wanted policy's order; 300.0 equals 300.
    old = tt("a", 10.0, ScaleInCooldown=300, DisableScaleIn=False)
    new = tt("a", 10.0, ScaleInCooldown=300.0, ScaleOutCooldown=60, DisableScaleIn=True)
    assert diff(State(SCOPE, t, (old,)), State(SCOPE, t, (new,))) == [
        Change("policy a", "ScaleOutCooldown", "(default)", "60"),
        Change("policy a", "DisableScaleIn", "false", "true")]
    assert diff(State(SCOPE, t, (old,)), State(SCOPE, t, (tt("a", 10.0, ScaleInCooldown=300),))
                ) == []  # fmt: skip
    # Different underneath what is shown: said, not hidden.
    def custom(unit: str) -> PolicyState:
        return PolicyState("u", "TargetTrackingScaling", {"TargetValue": 1.0,
            "CustomizedMetricSpecification": {"Namespace": "N", "MetricName": "M",
                                              "Statistic": "Average", "Unit": unit}})  # fmt: skip
    assert diff(State(SCOPE, t, (custom("Count"),)), State(SCOPE, t, (custom("Percent"),))) == [
        Change("policy u", "configuration", "other", "as planned")]


def test_diff_alarms() -> None:
    t = TargetState(1, 2)
    current = State(SCOPE, t, alarms=(alarm("x", 5.0), alarm("y", actions=("arn:y",)),
                                      alarm("z", policy="p")))
    wanted = State(SCOPE, t, alarms=(alarm("z", policy="p"), alarm("x", 7.0),
                                     alarm("w", actions=("arn:w",))))
    w_fields = [Change("alarm w", k, "(none)", v)
                for k, v in alarm_fields(alarm("w", actions=("arn:w",))).items()]
    assert diff(current, wanted) == [
        Change("alarm x", "rule", "CPUUtilization Average GreaterThanThreshold 5",
               "CPUUtilization Average GreaterThanThreshold 7"), *w_fields]  # fmt: skip
    y_fields = [Change("alarm y", k, v, "(none)")
                for k, v in alarm_fields(alarm("y", actions=("arn:y",))).items()]
    assert diff(current, wanted, exact=True)[-3:] == y_fields
    assert len(diff(current, wanted, exact=True)) == 1 + 3 + 3
    # The policy it invokes is compared; its ARNs are not.
    assert diff(State(SCOPE, t, alarms=(alarm("x", actions=("arn:1",)),)),
                State(SCOPE, t, alarms=(alarm("x", actions=("arn:2",)),))) == []  # fmt: skip
    assert diff(State(SCOPE, t, alarms=(alarm("x", policy="p"),)),
                State(SCOPE, t, alarms=(alarm("x", policy="q"),))) == [
        Change("alarm x", "action", "policy p", "policy q")]  # fmt: skip
    # A parameter not shown: "other".
    extra = AlarmState("x", {**alarm("x").params, "Unit": "Percent"})
    assert diff(State(SCOPE, t, alarms=(alarm("x"),)), State(SCOPE, t, alarms=(extra,))) == [
        Change("alarm x", "configuration", "other", "as planned")]


# --- diff.py: restore_calls --------------------------------------------------------------


def test_restore_to_nothing_deletes_then_deregisters() -> None:
    current = State(SCOPE, TargetState(1, 4), (tt("a", 1.0, "arn:a"), tt("b", 2.0)),
                    (alarm("x", policy="a"), alarm("y")))  # fmt: skip
    assert restore_calls(current, State(SCOPE, None)) == (
        Call(AAS, "DeleteScalingPolicy", {"PolicyName": "a", **COMMON}),
        Call(AAS, "DeleteScalingPolicy", {"PolicyName": "b", **COMMON}),
        Call("cloudwatch", "DeleteAlarms", {"AlarmNames": ["x", "y"]}),
        Call(AAS, "DeregisterScalableTarget", COMMON),
    )
    # A saved state without a target drops the policies even if it lists them.
    saved = State(SCOPE, None, (tt("a", 1.0),), (alarm("x", policy="a"),))
    assert restore_calls(current, saved) == (
        Call(AAS, "DeleteScalingPolicy", {"PolicyName": "a", **COMMON}),
        Call(AAS, "DeleteScalingPolicy", {"PolicyName": "b", **COMMON}),
        Call("cloudwatch", "DeleteAlarms", {"AlarmNames": ["y"]}),
        Call(AAS, "DeregisterScalableTarget", COMMON),
    )
    assert restore_calls(State(SCOPE, None), State(SCOPE, None)) == ()


def test_restore_target_and_its_suspended_state() -> None:
    susp = {"DynamicScalingInSuspended": True}
    reg = {**COMMON, "MinCapacity": 1, "MaxCapacity": 4}

    def st(t: TargetState | None) -> State:
        return State(SCOPE, t)

    assert restore_calls(st(None), st(TargetState(1, 4))) == (
        Call(AAS, "RegisterScalableTarget", reg),)
    assert restore_calls(st(TargetState(2, 4)), st(TargetState(1, 4, susp))) == (
        Call(AAS, "RegisterScalableTarget", {**reg, "SuspendedState": susp}),)
    # Equal bounds, different suspended state: still restored.
    assert restore_calls(st(TargetState(1, 4)), st(TargetState(1, 4, susp))) == (
        Call(AAS, "RegisterScalableTarget", {**reg, "SuspendedState": susp}),)
    assert restore_calls(st(TargetState(1, 4, {"x": False})), st(TargetState(1, 4))) == (
        Call(AAS, "RegisterScalableTarget", reg),)
    assert restore_calls(st(TargetState(1, 4, susp)), st(TargetState(1, 4, dict(susp)))) == ()
    assert restore_calls(st(TargetState(1, 4)), st(TargetState(1, 4))) == ()


def test_restore_policies_and_alarms_in_order() -> None:
    t = TargetState(1, 4)
    saved = State(SCOPE, t, (tt("a", 1.0), tt("b", 2.0), tt("c", 3.0)),
                  (alarm("x", policy="a"), alarm("y", policy="b"), alarm("z", 9.0),
                   alarm("v", policy="c")))  # fmt: skip
    current = State(SCOPE, t, (tt("b", 2.0, "arn:b"), tt("c", 4.0, "arn:c"), tt("d", 5.0)),
                    (alarm("y", policy="b"), alarm("z", 8.0), alarm("v", policy="c"),
                     alarm("old")))  # fmt: skip
    assert restore_calls(current, saved) == (
        Call(AAS, "DeleteScalingPolicy", {"PolicyName": "d", **COMMON}),
        Call("cloudwatch", "DeleteAlarms", {"AlarmNames": ["old"]}),
        put_policy(RES, DIM, tt("a", 1.0)),
        put_policy(RES, DIM, tt("c", 3.0)),
        # x: missing, its policy put above; y: same and its policy not re-put: left;
        # z: differs; v: same but its policy is re-put, so its action is renewed.
        put_alarm(alarm("x", policy="a"), {}, {"a", "c"}),
        put_alarm(alarm("z", 9.0), {}, ()),
        put_alarm(alarm("v", policy="c"), {}, {"a", "c"}),
    )
    calls = restore_calls(current, saved)
    assert calls[2].operation == "PutScalingPolicy"
    assert calls[4].actions_from == "a"
    assert calls[6].actions_from == "c"
    assert restore_calls(saved, saved) == ()


def test_restore_alarm_wired_to_a_policy_kept_gets_its_arn() -> None:
    t = TargetState(1, 4)
    saved = State(SCOPE, t, (tt("b", 2.0),), (alarm("y", policy="b"),))
    current = State(SCOPE, t, (tt("b", 2.0, "arn:b"), tt("e", 1.0, "")), ())
    calls = restore_calls(current, saved)
    assert calls == (
        Call(AAS, "DeleteScalingPolicy", {"PolicyName": "e", **COMMON}),
        Call("cloudwatch", "PutMetricAlarm",
             {"AlarmName": "y", **alarm("y").params, "AlarmActions": ["arn:b"]}),
    )  # fmt: skip


# --- target.py -----------------------------------------------------------------------------


def test_round_target() -> None:
    assert round_target(10.04) == 10.0
    assert round_target(10.06) == 10.1
    assert round_target(9.1234) == 9.123
    assert round_target(0.56789) == 0.568


REC = {"target_value": 3000, "formula": "f"}
PASS_TERMS = {"terms": [{"stat": "p50", "limit_ms": 50}, {"stat": "p99", "limit_ms": 100}],
              "max_error_rate": 0.01}  # fmt: skip
ERR_MSG = ("stage 3 failed by errors (20.0%) while its latency was within the SLO: errors, "
           "not load, set the capacity (check the endpoint's logs and quotas)")  # fmt: skip
LOWER = ("its capacity is a lower bound, not interpolated between a passing and a failing "
         "stage (raise --max-rps until a stage fails)")  # fmt: skip


def errors_analysis(
    values: dict[str, Any] | None = None,
    error_rate: Any = 0.2,
    slo: dict[str, Any] | None = None,
    failing: Any = 2,
) -> dict[str, Any]:
    return {
        "recommendation": REC,
        "capacity": {"method": "interpolated", "failing_stage": failing},
        "slo": PASS_TERMS if slo is None else slo,
        "stages": [
            {"index": 1, "slo_values_ms": {"p50": 10, "p99": 20}, "error_rate": 0.0},
            {"index": 2, "slo_values_ms": {"p50": 20, "p99": 80} if values is None else values,
             "error_rate": error_rate},
        ],
    }


def test_trust_problems_each_one_exactly() -> None:
    assert trust_problems({"recommendation": None, "capacity": {"method": "lower_bound"}}) == [
        "it has no recommendation (no stage passed the SLO)"]
    assert trust_problems({"recommendation": REC, "capacity": {"method": "lower_bound"}}) == [
        LOWER]
    assert trust_problems({"recommendation": REC}) == [
        "its capacity is a None, not interpolated between a passing and a failing stage (raise "
        "--max-rps until a stage fails)"]
    assert trust_problems({"recommendation": REC, "capacity": {"method": "interpolated"}}) == []
    assert trust_problems(errors_analysis()) == [ERR_MSG]
    # Latency at the limit is within it; both terms must hold.
    assert trust_problems(errors_analysis({"p50": 50, "p99": 100})) == [ERR_MSG]
    assert trust_problems(errors_analysis({"p50": 50.1, "p99": 80})) == []
    assert trust_problems(errors_analysis({"p50": 20, "p99": 100.5})) == []
    assert trust_problems(errors_analysis({"p50": 20})) == []
    assert trust_problems(errors_analysis({"p50": 20, "p99": None})) == []
    # The error rate must exceed the limit.
    assert trust_problems(errors_analysis(error_rate=0.01)) == []
    assert trust_problems(errors_analysis(error_rate=0.0101)) != []
    assert trust_problems(errors_analysis(error_rate=None)) == []
    # No error limit in the SLO: none is allowed.
    assert trust_problems(errors_analysis(error_rate=0.001, slo={"terms": []})) == [
        ERR_MSG.replace("20.0%", "0.1%")]
    assert trust_problems(errors_analysis(error_rate=0.001, slo={
        "terms": [{"stat": "p50", "limit_ms": 50}]})) == [
        ERR_MSG.replace("20.0%", "0.1%")]  # fmt: skip
    assert trust_problems(errors_analysis(slo={})) == []
    assert trust_problems(errors_analysis(failing=None)) == []
    assert trust_problems(errors_analysis(failing=1)) == []  # stage 2 passed its errors
    first = errors_analysis(failing=1)
    first["stages"][0]["error_rate"] = 0.5
    assert trust_problems(first) == [
        ERR_MSG.replace("stage 3", "stage 2").replace("20.0%", "50.0%")]
    warned = {"recommendation": None, "capacity": {"method": "lower_bound"}, "warnings": [
        {"code": "generator_limited", "message": "slow generator"},
        {"code": "other", "message": "no"}, {"code": "generator_limited", "message": "again"}]}
    assert trust_problems(warned) == [
        "it has no recommendation (no stage passed the SLO)", "slow generator", "again"]
    both = {**errors_analysis(), "capacity": {"method": "lower_bound", "failing_stage": 2},
            "warnings": [{"code": "generator_limited", "message": "w"}]}  # fmt: skip
    assert trust_problems(both) == [LOWER, ERR_MSG, "w"]


def stages_analysis(target_value: float, stages: list[dict[str, Any]],
                    instances: Any = None) -> dict[str, Any]:  # fmt: skip
    capacity = None if instances is None else {"instances": instances}
    return {"recommendation": {"target_value": target_value}, "capacity": capacity,
            "stages": stages}  # fmt: skip


def test_littles_law_points() -> None:
    stages = [
        {"achieved_rps": 50, "mean_ms": None, "p50_ms": 20},  # p50 without a mean
        {"achieved_rps": 100, "mean_ms": 40, "p50_ms": 1000},  # mean first
        {"achieved_rps": 0, "mean_ms": 500},  # no rate: skipped
        {"achieved_rps": 200, "mean_ms": None, "p50_ms": None},  # no latency: skipped
    ]
    value, formula = concurrency_target(stages_analysis(4500, stages))
    # 75 rps per instance, halfway between 20 ms and 40 ms: 30 ms.
    assert value == pytest.approx(75 * 0.030, rel=1e-12)
    assert formula == (
        "target = requests/s per instance at the target x mean latency there = 75.00 x "
        "0.0300 s = 2.25 concurrent requests per instance (Little's law)"
    )
    # Beyond the stages, the nearest latency; a capacity without instances counts one.
    assert concurrency_target(stages_analysis(12000, stages, 0))[0] == pytest.approx(200 * 0.040)
    assert concurrency_target(stages_analysis(1200, stages))[0] == pytest.approx(20 * 0.020)
    assert concurrency_target(stages_analysis(2250, stages, 2))[0] == pytest.approx(37.5 * 0.030)
    with pytest.raises(InsufficientDataError) as info:
        concurrency_target(stages_analysis(4500, stages[2:]))
    assert info.value.one_line() == (
        "the run's stages have no latency to apply Little's law to (pass --target-value)")
    with pytest.raises(InsufficientDataError):
        concurrency_target({"recommendation": {"target_value": 1}})


def facts(analysis: dict[str, Any]) -> RunFacts:
    return RunFacts("reports/r", {}, analysis)


def test_target_value_for_each_source() -> None:
    run = facts({"recommendation": {"target_value": 3000, "formula": "3000 because",
                                    "safety_factor": 0.7}})  # fmt: skip
    assert target_value_for(12.5, Kind.ASYNC, Metric.INVOCATIONS, None) == (
        12.5, "given with --target-value", False)
    assert target_value_for(None, Kind.VARIANT, Metric.INVOCATIONS, run) == (
        3000.0, "3000 because", True)
    assert target_value_for(None, Kind.VARIANT, Metric.INVOCATIONS, facts(
        {"recommendation": {"target_value": 42}})) == (42.0, "the run's recommendation", True)
    sized = facts({"serverless": {"sizing": {"peak_rps": 40, "busy_at_peak": 2.06,
                                             "provisioned_concurrency": 6,
                                             "target_utilization": 0.343}}})  # fmt: skip
    assert target_value_for(None, Kind.SERVERLESS, Metric.INVOCATIONS, sized) == (
        0.343, "the run's sizing for a peak of 40 requests/s: 2.06 executions busy / "
        "ProvisionedConcurrency 6, which keeps cold starts within the SLO", True)
    with pytest.raises(ConfigError) as c:
        target_value_for(None, Kind.SERVERLESS, Metric.INVOCATIONS, run)
    assert c.value.one_line() == (
        "the run reports/r measured a real-time variant, not a serverless one (use --kind "
        "variant, or a run made against the serverless variant)")
    with pytest.raises(ConfigError) as c:
        target_value_for(None, Kind.SERVERLESS, Metric.INVOCATIONS, facts({"serverless": {}}))
    assert c.value.one_line().startswith("the run reports/r has no provisioned-concurrency sizing")
    stages = [{"achieved_rps": 50, "mean_ms": 20}, {"achieved_rps": 100, "mean_ms": 40}]
    conc = facts({"recommendation": {"target_value": 4500}, "stages": stages})
    value, formula, from_run = target_value_for(None, Kind.VARIANT, Metric.CONCURRENCY, conc)
    assert (value, from_run) == (pytest.approx(2.25), True)
    assert formula.startswith("target = requests/s per instance at the target")
    with pytest.raises(ConfigError) as c:  # a real-time run has no backlog target
        target_value_for(None, Kind.ASYNC, Metric.INVOCATIONS, run)
    assert c.value.one_line() == (
        "the run reports/r measured a real-time endpoint, not the queue of an asynchronous one "
        "(run the load test against the asynchronous endpoint, or pass --target-value)")
    with pytest.raises(ConfigError) as c:
        target_value_for(None, Kind.VARIANT, Metric.INVOCATIONS, None)
    assert c.value.one_line() == "no target value (pass --target-value, or a run directory)"


@pytest.mark.parametrize("rec", [None, [1], "x"])
def test_target_value_without_a_recommendation(rec: Any) -> None:
    with pytest.raises(InsufficientDataError) as info:
        target_value_for(None, Kind.VARIANT, Metric.INVOCATIONS, facts({"recommendation": rec}))
    assert info.value.one_line() == (
        "the run reports/r has no recommendation (no stage passed the SLO) (re-run with a "
        "lower --start-rps or a looser --slo, or pass --target-value)")


@pytest.mark.parametrize("value", [True, "3000", None])
def test_target_value_not_a_number(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        target_value_for(None, Kind.VARIANT, Metric.INVOCATIONS,
                         facts({"recommendation": {"target_value": value}}))  # fmt: skip
    assert info.value.one_line() == (
        f"analysis.json's target value is not a number (got {value!r}) "
        "(re-run `recommender analyze reports/r`)")


def test_check_trust() -> None:
    good = facts({"recommendation": REC, "capacity": {"method": "interpolated"}})
    assert check_trust(good, False) == []
    assert check_trust(good, True) == []
    one = facts({"recommendation": REC, "capacity": {"method": "lower_bound"}})
    with pytest.raises(InsufficientDataError) as info:
        check_trust(one, False)
    assert info.value.one_line() == (
        f"the run reports/r is not a trustworthy basis for a policy: {LOWER} (re-run the load "
        "test, or pass --force to apply it anyway)")
    assert check_trust(one, True) == [f"--force: applying despite: {LOWER}"]
    three = facts({**one.analysis, "warnings": [
        {"code": "generator_limited", "message": "w1"},
        {"code": "generator_limited", "message": "w2"}]})  # fmt: skip
    with pytest.raises(InsufficientDataError) as info:
        check_trust(three, False)
    assert info.value.message == (
        f"the run reports/r is not a trustworthy basis for a policy: {LOWER} (and 2 more)")
    two = facts({**one.analysis, "warnings": [{"code": "generator_limited", "message": "w1"}]})
    with pytest.raises(InsufficientDataError) as info:
        check_trust(two, False)
    assert info.value.message.endswith(" (and 1 more)")
    assert check_trust(three, True) == [
        f"--force: applying despite: {LOWER}", "--force: applying despite: w1",
        "--force: applying despite: w2"]


def test_a_field_shown_as_none_on_one_side_only_is_no_change() -> None:
    # An alarm with no action reads "(none)", as does a missing one: no "action" line.
    t = TargetState(1, 2)
    bare = alarm("w")
    shown = [Change("alarm w", k, "(none)", v) for k, v in alarm_fields(bare).items()
             if k != "action"]  # fmt: skip
    assert diff(State(SCOPE, t), State(SCOPE, t, alarms=(bare,))) == shown
    assert diff(State(SCOPE, t, alarms=(bare,)), State(SCOPE, t), exact=True) == [
        Change(c.subject, c.field, c.after, c.before) for c in shown]


def test_littles_law_formula_shows_seconds() -> None:
    # 250 ms is 0.2500 s (not 0.2498, as a slip to / 1001 would show).
    value, formula = concurrency_target(stages_analysis(600, [{"achieved_rps": 10,
                                                               "mean_ms": 250}]))  # fmt: skip
    assert value == pytest.approx(2.5)
    assert formula == (
        "target = requests/s per instance at the target x mean latency there = 10.00 x "
        "0.2500 s = 2.5 concurrent requests per instance (Little's law)"
    )
