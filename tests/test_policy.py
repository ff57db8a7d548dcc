"""The policy plan (pure), its rendering, and every request shape against botocore's
service models (Stubber), for every scalable kind."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest
from botocore.stub import Stubber

from recommender.apply import (
    Prepared,
    apply_prepared,
    check_subject,
    execute,
    last_saved,
    load_run_facts,
    read_state,
)
from recommender.aws import AwsClient
from recommender.cli import main
from recommender.errors import AwsError, ConfigError, InsufficientDataError, RecommenderError
from recommender.pipeline import write_reports
from recommender.plan import RampPlan, Stage
from recommender.policy.diff import diff, restore_calls
from recommender.policy.kinds import POLICY_NAME, STEP_POLICY_NAME, Kind, Metric
from recommender.policy.plan import PolicyRequest, build_plan
from recommender.policy.render import format_changes, format_commands, kebab
from recommender.policy.state import (
    AlarmState,
    Call,
    PolicyState,
    Scope,
    State,
    TargetState,
    state_from_api,
)
from recommender.policy.target import (
    RunFacts,
    concurrency_target,
    target_value_for,
    trust_problems,
)
from tests.conftest import step_run, synthetic_records, update_run_meta, write_run

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
ARN = "arn:aws:autoscaling:eu-west-1:1:scalingPolicy:x:resource/sagemaker/{}:policyName/{}"


@pytest.fixture
def aws() -> AwsClient:
    session = boto3.session.Session(
        aws_access_key_id="AKID", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    return AwsClient(session)


def analysis(target_value: float = 3000.0, method: str = "interpolated") -> dict[str, Any]:
    """An analysis.json as `recommender analyze` writes it: 50 rps per instance at 20 ms,
    100 rps at 40 ms, failing at 120 rps."""
    stages = [
        {"index": 0, "achieved_rps": 50.0, "mean_ms": 20.0, "p50_ms": 19.0, "error_rate": 0.0,
         "slo_values_ms": {"p95": 30.0}},
        {"index": 1, "achieved_rps": 100.0, "mean_ms": 40.0, "p50_ms": 38.0, "error_rate": 0.0,
         "slo_values_ms": {"p95": 60.0}},
        {"index": 2, "achieved_rps": 120.0, "mean_ms": 150.0, "p50_ms": 140.0, "error_rate": 0.0,
         "slo_values_ms": {"p95": 400.0}},
    ]  # fmt: skip
    return {
        "slo": {"terms": [{"stat": "p95", "limit_ms": 100.0}], "max_error_rate": 0.01},
        "stages": stages,
        "capacity": {"method": method, "instances": 1, "failing_stage": 2},
        "recommendation": {"metric": "SageMakerVariantInvocationsPerInstance",
                           "target_value": target_value, "safety_factor": 0.5,
                           "rps_per_instance": target_value / 30, "formula": "the formula"},
        "warnings": [],
    }  # fmt: skip


def run_facts(**changes: Any) -> RunFacts:
    a = analysis()
    a.update(changes)
    return RunFacts("reports/r", {"endpoint": "ep", "variant": "AllTraffic"}, a)


SERVERLESS_SIZING = {"peak_rps": 40.0, "busy_at_peak": 2.0, "provisioned_concurrency": 4,
                     "target_utilization": 0.5, "min_capacity": 1, "max_capacity": 4}


def serverless_run_facts() -> RunFacts:
    """A serverless variant's run, sized for a peak (report --peak-rps)."""
    return RunFacts("reports/s", {"endpoint": "ep", "variant": "AllTraffic",
                                  "serverless": {"MaxConcurrency": 8, "MemorySizeInMB": 2048}},
                    {**analysis(), "serverless": {"sizing": SERVERLESS_SIZING}})  # fmt: skip


def facts_for(request: PolicyRequest) -> RunFacts:
    return serverless_run_facts() if request.kind is Kind.SERVERLESS else run_facts()


REQUESTS = {
    "variant": PolicyRequest(min_capacity=2, max_capacity=8),
    "variant-concurrency": PolicyRequest(metric=Metric.CONCURRENCY, min_capacity=2,
                                         max_capacity=8, policy_name="conc"),
    "async": PolicyRequest(kind=Kind.ASYNC, target_value="5", min_capacity=0, max_capacity=4,
                           scale_from_zero=True),
    "serverless": PolicyRequest(kind=Kind.SERVERLESS, min_capacity=1, max_capacity=10),
    "inference-component": PolicyRequest(kind=Kind.INFERENCE_COMPONENT,
                                         inference_component="ic-1", min_capacity=0,
                                         max_capacity=3),
    "inference-component-concurrency": PolicyRequest(
        kind=Kind.INFERENCE_COMPONENT, metric=Metric.CONCURRENCY, inference_component="ic-1",
        min_capacity=1, max_capacity=3),
}  # fmt: skip
EXPECTED = {  # resource id, dimension, metric specification, target value
    "variant": ("endpoint/ep/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount",
                {"PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}, 3000.0),
    # Little's law: 3000/60 = 50 rps per instance x 20 ms = 1 concurrent request.
    "variant-concurrency": ("endpoint/ep/variant/AllTraffic",
                            "sagemaker:variant:DesiredInstanceCount",
                            {"PredefinedMetricSpecification": {"PredefinedMetricType":
                             "SageMakerVariantConcurrentRequestsPerModelHighResolution"}}, 1.0),
    "async": ("endpoint/ep/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount",
              {"CustomizedMetricSpecification": {
                  "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                  "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
                  "Statistic": "Average"}}, 5.0),
    "serverless": ("endpoint/ep/variant/AllTraffic",
                   "sagemaker:variant:DesiredProvisionedConcurrency",
                   {"PredefinedMetricSpecification": {"PredefinedMetricType":
                    "SageMakerVariantProvisionedConcurrencyUtilization"}}, 0.5),
    "inference-component": ("inference-component/ic-1",
                            "sagemaker:inference-component:DesiredCopyCount",
                            {"PredefinedMetricSpecification": {"PredefinedMetricType":
                             "SageMakerInferenceComponentInvocationsPerCopy"}}, 3000.0),
    "inference-component-concurrency": (
        "inference-component/ic-1", "sagemaker:inference-component:DesiredCopyCount",
        {"PredefinedMetricSpecification": {"PredefinedMetricType":
         "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"}}, 1.0),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REQUESTS))
def test_plan_for_every_kind(case: str) -> None:
    plan = build_plan(REQUESTS[case], facts_for(REQUESTS[case]))
    resource, dimension, metric, value = EXPECTED[case]
    calls = plan.calls()
    assert calls[0] == Call("application-autoscaling", "RegisterScalableTarget", {
        "ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": dimension,
        "MinCapacity": REQUESTS[case].min_capacity, "MaxCapacity": REQUESTS[case].max_capacity,
    })  # fmt: skip
    assert calls[1].params == {
        "PolicyName": REQUESTS[case].policy_name, "ServiceNamespace": "sagemaker",
        "ResourceId": resource, "ScalableDimension": dimension,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": value, **metric, "ScaleInCooldown": 300, "ScaleOutCooldown": 300,
            "DisableScaleIn": False},
    }  # fmt: skip
    if case == "async":  # scaling up from zero: a step policy, and the alarm that fires it
        assert [c.operation for c in calls[2:]] == ["PutScalingPolicy", "PutMetricAlarm"]
        assert calls[2].params["PolicyType"] == "StepScaling"
        assert calls[3].actions_from == STEP_POLICY_NAME
        assert calls[3].params["MetricName"] == "HasBacklogWithoutCapacity"
        assert (calls[3].params["Threshold"], calls[3].params["Statistic"]) == (1.0, "Average")
        assert calls[3].params["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    else:
        assert len(calls) == 2
    assert plan.desired().target == TargetState(plan.min_capacity, plan.max_capacity)


def describe_response(plan_calls: tuple[Call, ...]) -> list[dict[str, Any]]:
    """DescribeScalingPolicies' answer after `plan_calls` were made."""
    out = []
    for c in plan_calls:
        if c.operation == "PutScalingPolicy":
            p = dict(c.params)
            p["PolicyARN"] = ARN.format(p["ResourceId"], p["PolicyName"])
            p["CreationTime"] = T0
            p["Alarms"] = [{"AlarmName": f"TargetTracking-{p['PolicyName']}-AlarmHigh",
                            "AlarmARN": "arn:aws:cloudwatch:eu-west-1:1:alarm:high"}]  # fmt: skip
            out.append(p)
    return out


@pytest.mark.parametrize("case", list(REQUESTS))
def test_request_shapes_against_botocore(aws: AwsClient, case: str) -> None:
    """Every call of every kind's plan, its read-back and its rollback, as botocore's
    service models define them (Stubber validates requests and responses)."""
    plan = build_plan(REQUESTS[case], facts_for(REQUESTS[case]))
    calls = plan.calls()
    scope = plan.scope
    aas, cw = aws.client("application-autoscaling"), aws.client("cloudwatch")
    query = {"ServiceNamespace": "sagemaker", "ResourceId": scope.resource_id,
             "ScalableDimension": scope.dimension}  # fmt: skip
    policies = describe_response(calls)
    with Stubber(aas) as s, Stubber(cw) as c:
        for call in calls:
            if call.service == "cloudwatch":
                step = ARN.format(scope.resource_id, call.actions_from)
                c.add_response("put_metric_alarm", {},
                               {**call.params, "AlarmActions": [step]})  # fmt: skip
                continue
            response = {"PolicyARN": ARN.format(scope.resource_id, call.params["PolicyName"]),
                        "Alarms": []} if call.operation == "PutScalingPolicy" else {}  # fmt: skip
            s.add_response(botocore.xform_name(call.operation), response, dict(call.params))
        execute(aws, calls)
        # Read back: the target, its policies, and the alarms the plan puts.
        s.add_response("describe_scalable_targets", {"ScalableTargets": [{
            **query, "MinCapacity": plan.min_capacity, "MaxCapacity": plan.max_capacity,
            "RoleARN": "arn:aws:iam::1:role/aas", "CreationTime": T0,
            "SuspendedState": {"DynamicScalingInSuspended": False,
                               "DynamicScalingOutSuspended": False,
                               "ScheduledScalingSuspended": False}}]},
            {**{k: v for k, v in query.items() if k != "ResourceId"},
             "ResourceIds": [scope.resource_id]})  # fmt: skip
        s.add_response("describe_scaling_policies", {"ScalingPolicies": policies}, query)
        if scope.alarm_names:
            alarm = {"AlarmName": scope.alarm_names[0], **calls[-1].params,
                     "AlarmActions": [ARN.format(scope.resource_id, STEP_POLICY_NAME)]}
            c.add_response("describe_alarms", {"MetricAlarms": [alarm]},
                           {"AlarmNames": list(scope.alarm_names)})  # fmt: skip
        state = read_state(aws, scope)
        assert diff(state, plan.desired()) == []
        assert state.policies[0].alarms == (f"TargetTracking-{plan.policies[0].name}-AlarmHigh",)
        # Rolling back to "nothing was there": policies, alarms, then the target go.
        undo = restore_calls(state, State(scope, None))
        assert [u.operation for u in undo] == (
            ["DeleteScalingPolicy"] * len(plan.policies)
            + (["DeleteAlarms"] if scope.alarm_names else []) + ["DeregisterScalableTarget"]
        )  # fmt: skip
        for u in undo:
            (c if u.service == "cloudwatch" else s).add_response(
                botocore.xform_name(u.operation), {}, dict(u.params))
        execute(aws, undo)
        s.assert_no_pending_responses()
        c.assert_no_pending_responses()


def test_subject_checks_for_serverless_and_inference_components(aws: AwsClient) -> None:
    sm = aws.client("sagemaker")
    endpoint = {"EndpointName": "ep", "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/ep",
                "EndpointConfigName": "cfg", "EndpointStatus": "InService", "CreationTime": T0,
                "LastModifiedTime": T0, "ProductionVariants": [{"VariantName": "AllTraffic"}]}
    config = {"EndpointConfigName": "cfg", "CreationTime": T0,
              "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/cfg",
              "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m",
                                      "ServerlessConfig": {"MemorySizeInMB": 2048,
                                                           "MaxConcurrency": 5}}]}  # fmt: skip
    serverless = build_plan(REQUESTS["serverless"], serverless_run_facts())
    with Stubber(sm) as s:
        for _ in range(2):
            s.add_response("describe_endpoint", endpoint, {"EndpointName": "ep"})
            for _ in range(2):
                s.add_response("describe_endpoint_config", config, {"EndpointConfigName": "cfg"})
        with pytest.raises(ConfigError, match=r"--max-capacity 10 is above variant AllTraffic's "
                           r"MaxConcurrency \(5\)"):  # fmt: skip
            check_subject(aws, serverless)
        with pytest.raises(ConfigError) as info:
            check_subject(aws, build_plan(REQUESTS["variant"], run_facts()))
        assert info.value.one_line() == (
            "variant AllTraffic of ep is serverless (use --kind serverless)")
    ic = build_plan(REQUESTS["inference-component"], run_facts())
    with Stubber(sm) as s:
        s.add_response("describe_inference_component", {
            "InferenceComponentName": "ic-1", "EndpointName": "ep", "VariantName": "AllTraffic",
            "InferenceComponentArn": "arn:aws:sagemaker:eu-west-1:1:inference-component/ic-1",
            "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/ep", "CreationTime": T0,
            "LastModifiedTime": T0, "InferenceComponentStatus": "InService",
            "RuntimeConfig": {"DesiredCopyCount": 2, "CurrentCopyCount": 2}},
            {"InferenceComponentName": "ic-1"})  # fmt: skip
        assert check_subject(aws, ic) == (
            "Inference component ic-1: InService on endpoint ep, 2 copies")
        s.add_client_error("describe_inference_component", "ValidationException",
                           "Could not find inference component")  # fmt: skip
        with pytest.raises(RecommenderError, match="no inference component named 'ic-1'"):
            check_subject(aws, ic)


def test_kebab_spells_names_as_the_aws_cli() -> None:
    plans = [build_plan(r, facts_for(r)) for r in REQUESTS.values()]
    names = {c.operation for p in plans for c in p.calls()} | {
        k for p in plans for c in p.calls() for k in c.params}
    names |= {"DeleteScalingPolicy", "DeregisterScalableTarget", "DeleteAlarms", "AlarmNames",
              "SuspendedState"}  # fmt: skip
    for name in names:
        assert kebab(name) == botocore.xform_name(name, "-"), name


@pytest.mark.parametrize(
    ("request_", "run", "error", "message"),
    [
        (PolicyRequest(min_capacity=3, max_capacity=2), True, ConfigError,
         "--min-capacity (3) is above --max-capacity (2) (MinCapacity <= MaxCapacity: lower "
         "--min-capacity or raise --max-capacity)"),
        (PolicyRequest(min_capacity=0, max_capacity=2), True, ConfigError,
         "--min-capacity 0: a real-time variant needs at least 1 instance (only asynchronous "
         "endpoints (--kind async) and inference components scale to 0)"),
        (PolicyRequest(kind=Kind.SERVERLESS, min_capacity=0, max_capacity=2), True, ConfigError,
         "--min-capacity must be >= 1 for --kind serverless (got 0)"),
        (PolicyRequest(target_value="lots", min_capacity=1, max_capacity=2), True, ConfigError,
         "--target-value must be a number (got 'lots') (e.g. --target-value 1200)"),
        (PolicyRequest(target_value="nan", min_capacity=1, max_capacity=2), True, ConfigError,
         "--target-value must be a finite number > 0 (got 'nan')"),
        (PolicyRequest(target_value="-5", min_capacity=1, max_capacity=2), True, ConfigError,
         "--target-value must be a finite number > 0 (got '-5')"),
        (PolicyRequest(min_capacity=1, max_capacity=2, scale_in_cooldown=-1), True, ConfigError,
         "--scale-in-cooldown must be >= 0 seconds (got -1)"),
        # A real-time run gives no backlog target (a run against the async endpoint does).
        (PolicyRequest(kind=Kind.ASYNC, min_capacity=0, max_capacity=2), True, ConfigError,
         "the run reports/r measured a real-time endpoint, not the queue of an asynchronous "
         "one (run the load test against the asynchronous endpoint, or pass --target-value)"),
        (PolicyRequest(kind=Kind.SERVERLESS, target_value=70, min_capacity=1, max_capacity=2),
         True, ConfigError, "--target-value 70 is not a utilization (give the share of "
         "provisioned concurrency in use, e.g. 0.5)"),
        (PolicyRequest(kind=Kind.ASYNC, metric=Metric.CONCURRENCY, target_value=5,
                       min_capacity=0, max_capacity=2), True, ConfigError,
         "--metric concurrency is not available for --kind async (leave --metric out)"),
        (PolicyRequest(scale_from_zero=True, min_capacity=1, max_capacity=2), True, ConfigError,
         "--scale-from-zero is for --kind async"),
        (PolicyRequest(kind=Kind.ASYNC, target_value=5, scale_from_zero=True, min_capacity=1,
                       max_capacity=2), True, ConfigError,
         "--scale-from-zero needs --min-capacity 0 (with instances always running there is "
         "no zero to scale from)"),
        (PolicyRequest(kind=Kind.INFERENCE_COMPONENT, min_capacity=1, max_capacity=2), True,
         ConfigError, "--kind inference-component needs --inference-component NAME"),
        (PolicyRequest(endpoint="ep", min_capacity=1, max_capacity=2), False, ConfigError,
         "no target value (pass --target-value, or a run directory)"),
        (PolicyRequest(target_value=5), False, ConfigError,
         "no endpoint to apply the policy to (pass --endpoint NAME, or a run directory made "
         "with --endpoint)"),
        (PolicyRequest(endpoint="ep", target_value=5), False, ConfigError,
         "pass --min-capacity and --max-capacity (or size them from traffic first: "
         "recommender report RUN_DIR --peak-rps R)"),
        (PolicyRequest(min_capacity=1, max_capacity=2, policy_name=" "), True, ConfigError,
         "--policy-name must have 1 to 256 characters"),
    ],
)  # fmt: skip
def test_invalid_requests(
    request_: PolicyRequest, run: bool, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        build_plan(request_, facts_for(request_) if run else None)
    assert isinstance(info.value, RecommenderError)
    assert info.value.one_line() == message


def test_kind_comes_from_what_the_run_measured() -> None:
    """No --kind: a run on an inference component scales that component (per copy); a run
    on a variant, the variant; --kind variant on a component's run is still refused."""
    a = run_facts().analysis
    facts = RunFacts("reports/r", {"endpoint": "ep", "variant": "AllTraffic",
                                   "inference_component": "ic-1"}, a)  # fmt: skip
    plan = build_plan(PolicyRequest(metric=Metric.CONCURRENCY, min_capacity=1, max_capacity=3),
                      facts)  # fmt: skip
    assert (plan.kind, plan.resource_id) == (Kind.INFERENCE_COMPONENT, "inference-component/ic-1")
    assert plan.metric is not None and "InferenceComponentConcurrentRequestsPerCopy" in str(
        plan.policies[0].configuration)
    assert build_plan(PolicyRequest(min_capacity=1, max_capacity=3), run_facts()).kind is (
        Kind.VARIANT)
    with pytest.raises(ConfigError, match="the run measured inference component ic-1"):
        build_plan(PolicyRequest(kind=Kind.VARIANT, min_capacity=1, max_capacity=3), facts)


def test_untrustworthy_runs_are_refused_unless_forced() -> None:
    req = PolicyRequest(min_capacity=1, max_capacity=4)
    lower = run_facts(capacity={"method": "lower_bound", "instances": 1, "failing_stage": None})
    with pytest.raises(InsufficientDataError) as info:
        build_plan(req, lower)
    assert info.value.one_line() == (
        "the run reports/r is not a trustworthy basis for a policy: its capacity is a lower "
        "bound, not interpolated between a passing and a failing stage (raise --max-rps until "
        "a stage fails) (re-run the load test, or pass --force to apply it anyway)"
    )
    forced = build_plan(PolicyRequest(min_capacity=1, max_capacity=4, force=True), lower)
    assert forced.warnings[0].startswith("--force: applying despite: its capacity is a lower")
    # A target value given outright does not rest on the run's capacity.
    assert build_plan(PolicyRequest(target_value=900, min_capacity=1, max_capacity=4), lower)
    with pytest.raises(InsufficientDataError, match="no recommendation"):
        build_plan(PolicyRequest(min_capacity=1, max_capacity=4, force=True),
                   run_facts(recommendation=None))  # fmt: skip


def test_trust_problems_from_real_analyses(tmp_path: Path) -> None:
    """Each problem as `recommender analyze` reports it, from synthetic runs."""

    def facts(path: Path) -> RunFacts:
        write_reports(path, formats=["json"])
        return load_run_facts(path)

    good = facts(step_run(tmp_path / "good", passing_up_to=80))
    assert trust_problems(good.analysis) == []
    lower = facts(step_run(tmp_path / "lower", passing_up_to=1000))
    assert trust_problems(lower.analysis)[0].startswith("its capacity is a lower bound")
    plan = RampPlan(tuple(Stage(r, 4) for r in (40, 60, 80, 100)), warmup_seconds=1)
    errors = write_run(tmp_path / "errors", plan, synthetic_records(
        plan, [30.0] * 4, error_rate=[0, 0, 0.2, 0.2]))  # fmt: skip
    assert trust_problems(facts(errors).analysis) == [
        "stage 3 failed by errors (20.0%) while its latency was within the SLO: errors, not "
        "load, set the capacity (check the endpoint's logs and quotas)"
    ]
    slow = write_run(tmp_path / "slow", plan, synthetic_records(
        plan, [30, 30, 30, 200], achieved=[40, 50, 80, 100]))  # fmt: skip
    assert trust_problems(facts(slow).analysis) == [
        "Stage 2: achieved 50.0 of 60 rps offered while within the SLO: the load generator "
        "could not drive the rate, so the stage says nothing about the endpoint. Add --workers "
        "(or raise --users)."
    ]


def test_littles_law_target() -> None:
    # 4800 per minute = 80 rps per instance, between 50 rps (20 ms) and 100 rps (40 ms): 32 ms.
    value, formula = concurrency_target(analysis(target_value=4800))
    assert value == pytest.approx(80 * 0.032)
    assert formula == (
        "target = requests/s per instance at the target x mean latency there = 80.00 x "
        "0.0320 s = 2.56 concurrent requests per instance (Little's law)"
    )
    # Stage rates are for all instances together: with 2, the points are 25 rps (20 ms) and
    # 50 rps (40 ms) per instance, so 40 rps per instance (2400 a minute) sees 32 ms.
    two = analysis(target_value=2400)
    two["capacity"]["instances"] = 2
    assert concurrency_target(two)[0] == pytest.approx(40 * 0.032)


def test_notes_and_peak_warning() -> None:
    plan = build_plan(PolicyRequest(min_capacity=2, max_capacity=4, peak_rps=500,
                                    policy_name="mine"), run_facts())  # fmt: skip
    assert plan.notes[1] == (
        "Policy name 'mine': the SageMaker console shows it as a custom policy; "
        "SageMakerEndpointInvocationScalingPolicy shows as its built-in one."
    )
    assert plan.warnings == (
        "MaxCapacity 4 is below the 10 instance(s) the expected peak of 500 requests/s needs "
        "at this target (ceil(500 x 60 / 3000)): beyond 4 the SLO will not hold. Raise "
        "--max-capacity to at least 10.",
    )
    assert build_plan(PolicyRequest(min_capacity=2, max_capacity=10, peak_rps=500),
                      run_facts()).warnings == ()  # fmt: skip
    # The report's sizing gives the bounds and the peak when none are passed.
    sized = run_facts(sizing={"min_capacity": 2, "max_capacity": 3, "peak_rps": 200.0})
    plan = build_plan(PolicyRequest(), sized)
    assert (plan.min_capacity, plan.max_capacity) == (2, 3)
    assert "below the 4 instance(s)" in plan.warnings[0]


def test_commands_exact_for_a_dry_run() -> None:
    plan = build_plan(REQUESTS["async"], run_facts())
    assert format_commands(plan.calls(), "r 1") == """\
aws application-autoscaling register-scalable-target \\
  --service-namespace sagemaker \\
  --resource-id endpoint/ep/variant/AllTraffic \\
  --scalable-dimension sagemaker:variant:DesiredInstanceCount \\
  --min-capacity 0 \\
  --max-capacity 4

aws application-autoscaling put-scaling-policy \\
  --policy-name SageMakerEndpointInvocationScalingPolicy \\
  --service-namespace sagemaker \\
  --resource-id endpoint/ep/variant/AllTraffic \\
  --scalable-dimension sagemaker:variant:DesiredInstanceCount \\
  --policy-type TargetTrackingScaling \\
  --target-tracking-scaling-policy-configuration 'file://r 1/target_tracking_scaling_policy.json'

POLICY_ARN=$(aws application-autoscaling put-scaling-policy \\
  --policy-name HasBacklogWithoutCapacity-ScalingPolicy \\
  --service-namespace sagemaker \\
  --resource-id endpoint/ep/variant/AllTraffic \\
  --scalable-dimension sagemaker:variant:DesiredInstanceCount \\
  --policy-type StepScaling \\
  --step-scaling-policy-configuration 'file://r 1/step_scaling_policy.json' \\
  --query PolicyARN --output text)

aws cloudwatch put-metric-alarm \\
  --alarm-name HasBacklogWithoutCapacity-ep \\
  --alarm-description 'Scale ep up from zero instances (recommender)' \\
  --metric-name HasBacklogWithoutCapacity \\
  --namespace AWS/SageMaker \\
  --statistic Average \\
  --dimensions Name=EndpointName,Value=ep \\
  --period 60 \\
  --evaluation-periods 2 \\
  --datapoints-to-alarm 2 \\
  --threshold 1.0 \\
  --comparison-operator GreaterThanOrEqualToThreshold \\
  --treat-missing-data missing \\
  --actions-enabled \\
  --alarm-actions "$POLICY_ARN"
"""


def policy(name: str, value: float, arn: str | None = None) -> PolicyState:
    return PolicyState(name, "TargetTrackingScaling", {
        "TargetValue": value,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": 300, "ScaleOutCooldown": 300}, arn)  # fmt: skip


def test_diff_and_restore() -> None:
    scope = Scope("endpoint/ep/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount")
    plan = build_plan(PolicyRequest(min_capacity=2, max_capacity=8), run_facts())
    before = State(scope, TargetState(1, 2), (policy(POLICY_NAME, 1000.0, "arn:1"),
                                             policy("other", 50.0, "arn:2")))  # fmt: skip
    assert format_changes(diff(before, plan.desired())) == """\
Changes:
  scalable target:
    MinCapacity: 1 -> 2
    MaxCapacity: 2 -> 8
  policy SageMakerEndpointInvocationScalingPolicy:
    TargetValue: 1000 -> 3000
"""
    # DisableScaleIn left out reads as AWS's default, false; 300.0 equals 300.
    after = State(scope, TargetState(2, 8), (policy(POLICY_NAME, 3000.0, "arn:3"),
                                            policy("other", 50.0, "arn:2")))  # fmt: skip
    assert diff(after, plan.desired()) == []
    assert format_changes([]) == "No change: what is there already matches the plan.\n"
    undo = restore_calls(after, before)
    assert [(c.operation, c.params.get("PolicyName")) for c in undo] == [
        ("RegisterScalableTarget", None), ("PutScalingPolicy", POLICY_NAME)]
    assert undo[1].params["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 1000.0
    assert restore_calls(before, before) == ()
    # A state survives its file.
    assert State.from_dict(json.loads(json.dumps(before.to_dict()))) == before


def test_state_from_api_reads_alarms_wired_to_policies() -> None:
    plan = build_plan(REQUESTS["async"], run_facts())
    scope = plan.scope
    policies = describe_response(plan.calls())
    # AWS may hand numbers back as floats.
    policies[1]["StepScalingPolicyConfiguration"]["StepAdjustments"][0][
        "MetricIntervalLowerBound"] = 0.0
    alarm = {"AlarmName": scope.alarm_names[0], **plan.calls()[-1].params, "OKActions": [],
             "Metrics": [], "StateValue": "OK",
             "AlarmActions": [ARN.format(scope.resource_id, STEP_POLICY_NAME)]}  # fmt: skip
    target = {"ResourceId": scope.resource_id, "ScalableDimension": scope.dimension,
              "MinCapacity": 0, "MaxCapacity": 4}  # fmt: skip
    state = state_from_api(scope, [target], policies, [alarm])
    assert state.alarms[0].policy == STEP_POLICY_NAME
    assert diff(state, plan.desired()) == []
    # Restoring "no alarm" deletes it; a re-put step policy gets its alarm re-wired.
    calls = restore_calls(state, State(scope, TargetState(0, 4), plan.policies[:1]))
    assert [c.operation for c in calls] == ["DeleteScalingPolicy", "DeleteAlarms"]
    rewired = restore_calls(State(scope, TargetState(0, 4), plan.policies[:1]), state)
    assert [(c.operation, c.actions_from) for c in rewired] == [
        ("PutScalingPolicy", None), ("PutMetricAlarm", STEP_POLICY_NAME)]


def test_failed_put_restores_the_previous_state(aws: AwsClient, tmp_path: Path) -> None:
    plan = build_plan(PolicyRequest(min_capacity=2, max_capacity=8), run_facts())
    scope = plan.scope
    aas = aws.client("application-autoscaling")
    query = {"ServiceNamespace": "sagemaker", "ResourceId": scope.resource_id,
             "ScalableDimension": scope.dimension}  # fmt: skip
    state_file = tmp_path / "state.json"
    with Stubber(aas) as s:
        s.add_response("describe_scalable_targets", {"ScalableTargets": []},
                       {"ServiceNamespace": "sagemaker", "ResourceIds": [scope.resource_id],
                        "ScalableDimension": scope.dimension})  # fmt: skip
        s.add_response("describe_scaling_policies", {"ScalingPolicies": []}, query)
        s.add_response("register_scalable_target", {}, dict(plan.calls()[0].params))
        s.add_client_error("put_scaling_policy", "AccessDeniedException", "not allowed")
        s.add_response("describe_scalable_targets", {"ScalableTargets": [{
            **query, "MinCapacity": 2, "MaxCapacity": 8, "RoleARN": "r", "CreationTime": T0}]},
            {"ServiceNamespace": "sagemaker", "ResourceIds": [scope.resource_id],
             "ScalableDimension": scope.dimension})  # fmt: skip
        s.add_response("describe_scaling_policies", {"ScalingPolicies": []}, query)
        s.add_response("deregister_scalable_target", {}, query)
        current = read_state(aws, scope)
        prepared = Prepared(plan, "", current, tuple(diff(current, plan.desired())), ())
        with pytest.raises(AwsError) as info:
            apply_prepared(aws, prepared, state_file, "run `recommender rollback`")
        s.assert_no_pending_responses()
    assert info.value.one_line() == (
        "PutScalingPolicy SageMakerEndpointInvocationScalingPolicy failed: "
        "AccessDeniedException: not allowed; the previous state was restored "
        "(DeregisterScalableTarget endpoint/ep/variant/AllTraffic) (the credentials lack this "
        "permission: check the IAM policy)"
    )
    assert not state_file.exists()  # restored: nothing left to roll back


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--url", "http://127.0.0.1:9/invocations", "--max-rps", "10", "--apply",
          "--min-capacity", "1", "--max-capacity", "2"],
         "Error: --apply needs --endpoint (a policy scales a SageMaker endpoint)"),
        (["loadtest", "--endpoint", "ep", "--max-rps", "10", "--apply"],
         "Error: --apply is for `recommender run` (or apply a run later: recommender apply "
         "RUN_DIR)"),
        (["run", "--endpoint", "ep", "--max-rps", "10", "--apply", "--min-capacity", "3",
          "--max-capacity", "2"],
         "Error: --min-capacity (3) is above --max-capacity (2) (MinCapacity <= MaxCapacity: "
         "lower --min-capacity or raise --max-capacity)"),
        (["apply", "--min-capacity", "1", "--max-capacity", "2"],
         "Error: nothing to apply to (pass a run directory, or --endpoint NAME with "
         "--target-value)"),
        (["apply", "--endpoint", "ep", "--kind", "lambda"],
         "Error: Invalid value for '--kind'"),
    ],
)  # fmt: skip
def test_cli_refuses_before_any_aws_call(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    code = main([*argv, "--out", str(tmp_path)] if argv[0] in ("run", "loadtest") else argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_rollback_without_a_saved_state(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["rollback", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"Error: no saved autoscaling state in {tmp_path / 'autoscaling_state.json'} (nothing "
        "was applied from here, or it was rolled back already)\n"
    )
    with pytest.raises(RecommenderError):
        last_saved(tmp_path / "none.json")


def test_apply_reads_the_run_directory(tmp_path: Path) -> None:
    run = step_run(tmp_path / "run", passing_up_to=80)
    with pytest.raises(RecommenderError, match="has no analysis.json"):
        load_run_facts(run)
    update_run_meta(run, target={"endpoint": "ep", "variant": "Blue", "region": "eu-west-1"})
    write_reports(run, formats=["json"])
    plan = build_plan(PolicyRequest(min_capacity=1, max_capacity=3), load_run_facts(run))
    assert plan.resource_id == "endpoint/ep/variant/Blue"
    rec = json.loads((run / "analysis.json").read_text())["recommendation"]
    assert plan.target_value == round(rec["target_value"], 1)


def test_run_apply_bounds_are_checked_before_any_load() -> None:
    from recommender.apply import check_before_run

    with pytest.raises(ConfigError) as info:
        check_before_run(endpoint="ep", variant=None, min_capacity=3, max_capacity=2)
    assert info.value.one_line() == (
        "--min-capacity (3) is above --max-capacity (2) (MinCapacity <= MaxCapacity: lower "
        "--min-capacity or raise --max-capacity)")
    with pytest.raises(ConfigError, match="--apply needs --endpoint"):
        check_before_run(endpoint=None, variant=None, min_capacity=1, max_capacity=2)
    check_before_run(endpoint="ep", variant=None, min_capacity=1, max_capacity=2)


@pytest.mark.parametrize(
    ("peak", "message"),
    [(0.0, "--peak-rps must be > 0 (got 0)"), (-2.0, "--peak-rps must be > 0 (got -2)"),
     (math.inf, "--peak-rps must be > 0 (got inf)"), (math.nan, "--peak-rps must be > 0 (got nan)"),
     (0.5, None)],
)  # fmt: skip
def test_peak_rps_and_policy_name_are_checked(peak: float, message: str | None) -> None:
    req = PolicyRequest(min_capacity=1, max_capacity=2, peak_rps=peak, target_value=600)
    if message is None:
        assert build_plan(req, run_facts()).warnings == ()  # 0.5 rps needs 1 instance
    else:
        with pytest.raises(ConfigError) as info:
            build_plan(req, run_facts())
        assert info.value.one_line() == message
    longest = build_plan(replace(req, peak_rps=None, policy_name="p" * 256), run_facts())
    assert longest.policies[0].name == "p" * 256
    with pytest.raises(ConfigError, match="1 to 256 characters"):
        build_plan(replace(req, peak_rps=None, policy_name="p" * 257), run_facts())


def test_desired_state_is_the_plan_s_scope_target_policies_and_alarms() -> None:
    plan = build_plan(REQUESTS["async"], run_facts())
    alarm = "HasBacklogWithoutCapacity-ep"
    assert plan.scope == Scope("endpoint/ep/variant/AllTraffic",
                               "sagemaker:variant:DesiredInstanceCount", (alarm,))  # fmt: skip
    assert plan.desired() == State(plan.scope, TargetState(0, 4), plan.policies, plan.alarms)
    assert [a.name for a in plan.desired().alarms] == [alarm]
    # An alarm wired to a policy outside the plan keeps the actions it has.
    other = replace(plan, alarms=(AlarmState("x", {"Threshold": 1.0}, ("arn:a",), "other"),))
    assert other.calls()[-1] == Call("cloudwatch", "PutMetricAlarm", {
        "AlarmName": "x", "Threshold": 1.0, "AlarmActions": ["arn:a"]})  # fmt: skip


def test_kind_serverless_or_async_comes_from_the_run() -> None:
    serverless = build_plan(PolicyRequest(min_capacity=1, max_capacity=4), serverless_run_facts())
    assert serverless.kind is Kind.SERVERLESS
    facts = RunFacts("reports/a", {"endpoint": "ep", "variant": "AllTraffic", "kind": "async"},
                     analysis())  # fmt: skip
    plan = build_plan(PolicyRequest(target_value=5, min_capacity=0, max_capacity=2,
                                    scale_from_zero=True), facts)  # fmt: skip
    assert plan.kind is Kind.ASYNC


def test_peak_warning_for_a_concurrency_policy_uses_the_run_s_rate_per_instance() -> None:
    # The run's target 3000 per minute: 50 rps per instance; a peak of 500 rps needs 10.
    req = PolicyRequest(metric=Metric.CONCURRENCY, min_capacity=2, max_capacity=4, peak_rps=500)
    assert build_plan(req, run_facts()).warnings == (
        "MaxCapacity 4 is below the 10 instance(s) the expected peak of 500 requests/s needs "
        "at this target (ceil(500 / 50.0)): beyond 4 the SLO will not hold. Raise "
        "--max-capacity to at least 10.",
    )  # fmt: skip
    assert build_plan(replace(req, max_capacity=10), run_facts()).warnings == ()
    # 505 rps is 10.1 instances' worth: 11 are needed.
    assert "below the 11 instance(s)" in build_plan(replace(req, peak_rps=505, max_capacity=10),
                                                    run_facts()).warnings[0]  # fmt: skip
    # No recommendation in the run to tell the rate per instance: no warning.
    bare = replace(req, target_value=2.0)
    assert build_plan(bare, run_facts(recommendation=None)).warnings == ()
    assert build_plan(replace(bare, endpoint="ep"), None).warnings == ()


def test_a_kind_other_than_the_run_s_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        build_plan(PolicyRequest(kind=Kind.VARIANT, min_capacity=1, max_capacity=4),
                   serverless_run_facts())  # fmt: skip
    assert info.value.one_line() == ("the run reports/s measured a serverless variant, not "
                                     "--kind variant (pass --kind serverless)")  # fmt: skip
    facts = RunFacts("reports/a", {"endpoint": "ep", "variant": "AllTraffic", "kind": "async"},
                     analysis())  # fmt: skip
    with pytest.raises(ConfigError) as info:
        build_plan(PolicyRequest(kind=Kind.VARIANT, target_value=5, min_capacity=1,
                                 max_capacity=2), facts)  # fmt: skip
    assert info.value.one_line() == ("the run reports/a measured an asynchronous endpoint, not "
                                     "--kind variant (pass --kind async)")  # fmt: skip


def test_inference_component_flags_on_a_variant_are_refused() -> None:
    a = run_facts().analysis
    facts = RunFacts("reports/r", {"endpoint": "ep", "variant": "AllTraffic",
                                   "inference_component": "ic-1"}, a)  # fmt: skip
    with pytest.raises(ConfigError) as info:
        build_plan(PolicyRequest(kind=Kind.VARIANT, min_capacity=1, max_capacity=3), facts)
    assert info.value.one_line() == ("the run measured inference component ic-1: its capacity "
                                     "is per copy (use --kind inference-component)")  # fmt: skip
    with pytest.raises(ConfigError) as info:
        build_plan(PolicyRequest(kind=Kind.VARIANT, inference_component="ic-2", min_capacity=1,
                                 max_capacity=3), run_facts())  # fmt: skip
    assert info.value.one_line() == "--inference-component is for --kind inference-component"
    # Each plan names what it scales, and nothing else.
    variant = build_plan(PolicyRequest(min_capacity=1, max_capacity=3), run_facts())
    assert (variant.variant, variant.inference_component) == ("AllTraffic", None)
    ic = build_plan(PolicyRequest(min_capacity=1, max_capacity=3), facts)
    assert (ic.variant, ic.inference_component) == (None, "ic-1")


def test_bounds_from_the_run_are_checked_like_given_ones() -> None:
    # A serverless run's sizing: ProvisionedConcurrency's bounds, used when none are given...
    plan = build_plan(PolicyRequest(kind=Kind.SERVERLESS), serverless_run_facts())
    assert (plan.min_capacity, plan.max_capacity) == (1, 4)
    # ...but not for a target value given outright (the sizing assumed the run's).
    with pytest.raises(ConfigError, match="pass --min-capacity and --max-capacity"):
        build_plan(PolicyRequest(kind=Kind.SERVERLESS, target_value=0.5), serverless_run_facts())
    # Utilization is a share: 1 (all in use) is the most.
    full = build_plan(PolicyRequest(kind=Kind.SERVERLESS, target_value=1, min_capacity=1,
                                    max_capacity=2), serverless_run_facts())  # fmt: skip
    assert full.target_value == 1.0
    with pytest.raises(ConfigError, match="--target-value 1.5 is not a utilization"):
        build_plan(PolicyRequest(kind=Kind.SERVERLESS, target_value=1.5, min_capacity=1,
                                 max_capacity=2), serverless_run_facts())  # fmt: skip
    # Both bounds or neither.
    with pytest.raises(ConfigError, match="pass --min-capacity and --max-capacity"):
        build_plan(PolicyRequest(endpoint="ep", target_value=600, max_capacity=3), None)
    with pytest.raises(ConfigError, match="pass --min-capacity and --max-capacity"):
        build_plan(PolicyRequest(endpoint="ep", target_value=600, min_capacity=1), None)
    # The report's sizing is checked against AWS's rules as flags are.
    with pytest.raises(ConfigError) as info:
        build_plan(PolicyRequest(), run_facts(sizing={"min_capacity": 0, "max_capacity": 2}))
    assert info.value.one_line().startswith("--min-capacity 0: a real-time variant needs")
    with pytest.raises(ConfigError) as info:
        build_plan(PolicyRequest(), run_facts(sizing={"min_capacity": 3, "max_capacity": 2}))
    assert info.value.one_line().startswith("--min-capacity (3) is above --max-capacity (2)")


def test_a_component_target_from_a_variant_run_says_it_assumes_one_copy_per_instance() -> None:
    req = PolicyRequest(kind=Kind.INFERENCE_COMPONENT, inference_component="ic-1",
                        min_capacity=1, max_capacity=3)  # fmt: skip
    assert build_plan(req, run_facts()).notes == (
        "Target value 3000 invocations per copy per minute: the formula.",
        "The target is per copy; the run measured per instance, so this assumes one copy per "
        "instance tested (pass --target-value otherwise).",
    )  # fmt: skip
    # Given outright, or measured on the component itself: no such assumption.
    assert len(build_plan(replace(req, target_value=900), run_facts()).notes) == 1
    measured = RunFacts("reports/r", {"endpoint": "ep", "variant": "AllTraffic",
                                      "inference_component": "ic-1"}, analysis())  # fmt: skip
    assert len(build_plan(req, measured).notes) == 1
    assert len(build_plan(PolicyRequest(min_capacity=1, max_capacity=3), run_facts()).notes) == 1


def test_async_at_zero_without_scale_from_zero_is_warned_about() -> None:
    facts = RunFacts("reports/a", {"endpoint": "ep", "variant": "AllTraffic", "kind": "async"},
                     analysis())  # fmt: skip
    req = PolicyRequest(kind=Kind.ASYNC, target_value=5, min_capacity=0, max_capacity=2)
    assert build_plan(req, facts).warnings == (
        "MinCapacity 0 without --scale-from-zero: at zero instances the backlog per instance "
        "is undefined, so nothing scales the endpoint up again. Add --scale-from-zero.",)
    assert build_plan(replace(req, scale_from_zero=True), facts).warnings == ()
    assert build_plan(replace(req, min_capacity=1), facts).warnings == ()
    ic = PolicyRequest(kind=Kind.INFERENCE_COMPONENT, inference_component="ic-1",
                       target_value=5, min_capacity=0, max_capacity=2)  # fmt: skip
    assert build_plan(ic, run_facts()).warnings == ()  # the warning is for async endpoints


def test_the_step_policy_that_scales_up_from_zero() -> None:
    plan = build_plan(REQUESTS["async"], run_facts())
    step = plan.policies[1]
    assert (step.name, step.type) == (STEP_POLICY_NAME, "StepScaling")
    # AWS's documented settings: one instance more whenever the alarm is at or above 1.
    assert dict(step.configuration) == {
        "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
        "Cooldown": 300,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}  # fmt: skip
    assert plan.source == "given with --target-value" and plan.variant == "AllTraffic"


def async_facts(**rec: Any) -> RunFacts:
    """A run against an asynchronous endpoint: its recommendation is a backlog target."""
    recommendation = {"metric": "ApproximateBacklogSizePerInstance", "target_value": 5.5, **rec}
    return RunFacts("reports/a", {"endpoint": "ep", "kind": "async"},
                    {**analysis(), "recommendation": recommendation})  # fmt: skip


def test_the_async_target_comes_only_from_an_async_run() -> None:
    assert target_value_for(None, Kind.ASYNC, Metric.INVOCATIONS, async_facts(formula="f")) == (
        5.5, "f", True)  # fmt: skip
    assert target_value_for(None, Kind.ASYNC, Metric.INVOCATIONS, async_facts()) == (
        5.5, "the run's target", True)  # fmt: skip
    with pytest.raises(ConfigError) as info:
        target_value_for(None, Kind.ASYNC, Metric.INVOCATIONS, None)
    assert info.value.one_line() == (
        "--kind async needs --target-value (queued requests per instance), or a run directory "
        "of an asynchronous endpoint (run `recommender run --endpoint E --input-s3 ...` first, "
        "or pass --target-value (AWS's example uses 5))")  # fmt: skip
    # ...and an async run's target is not an instance's invocations.
    with pytest.raises(ConfigError) as info:
        target_value_for(None, Kind.VARIANT, Metric.INVOCATIONS, async_facts())
    assert info.value.one_line() == (
        "the run reports/a measured an asynchronous endpoint (apply it with --kind async)")


def test_a_serverless_stage_throttled_at_its_limit_is_not_an_error_problem() -> None:
    def failing_stage(serverless: bool, kinds: dict[str, int]) -> dict[str, Any]:
        a = analysis()
        a["stages"][2] = {**a["stages"][2], "slo_values_ms": {"p95": 80.0}, "error_rate": 0.2,
                          "errors_by_kind": kinds}  # fmt: skip
        return {**a, "serverless": {"sizing": {}}} if serverless else a

    throttled = {"ThrottlingException": 20}
    assert trust_problems(failing_stage(True, throttled)) == []  # MaxConcurrency, measured
    problem = ("stage 3 failed by errors (20.0%) while its latency was within the SLO: "
               "errors, not load, set the capacity (check the endpoint's logs and quotas)")
    assert trust_problems(failing_stage(False, throttled)) == [problem]
    assert trust_problems(failing_stage(True, {**throttled, "ModelError": 1})) == [problem]
    assert trust_problems(failing_stage(True, {})) == [problem]


def test_a_concurrency_target_is_the_run_s_own_when_it_has_one() -> None:
    def facts(**rec: Any) -> RunFacts:
        a = analysis()
        return RunFacts("reports/r", {"endpoint": "ep"},
                        {**a, "recommendation": {**a["recommendation"], **rec}})  # fmt: skip

    own = facts(concurrency_target_value=2.5, concurrency_formula="cf")
    assert target_value_for(None, Kind.VARIANT, Metric.CONCURRENCY, own) == (2.5, "cf", True)
    # Not a positive number (an older or damaged analysis.json): Little's law, 50 x 20 ms.
    small = facts(concurrency_target_value=0.5, concurrency_formula="cf")
    assert target_value_for(None, Kind.VARIANT, Metric.CONCURRENCY, small)[0] == 0.5
    for bad in (True, 0, -1.0, "2"):
        run = facts(concurrency_target_value=bad)
        value, formula, from_run = target_value_for(None, Kind.VARIANT, Metric.CONCURRENCY, run)
        assert value == pytest.approx(1.0) and formula.endswith("(Little's law)") and from_run


def test_a_serverless_run_not_yet_sized_says_how_to_size_it() -> None:
    unsized = RunFacts("reports/s", {"endpoint": "ep", "serverless": {"MaxConcurrency": 8}},
                       {**analysis(), "serverless": {}})  # fmt: skip
    with pytest.raises(ConfigError) as info:
        target_value_for(None, Kind.SERVERLESS, Metric.INVOCATIONS, unsized)
    assert info.value.one_line() == (
        "the run reports/s has no provisioned-concurrency sizing (size it for your peak first: "
        "recommender report reports/s --peak-rps R (or pass --target-value and the "
        "capacities))")  # fmt: skip
