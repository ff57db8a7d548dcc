"""The plan: a request checked against AWS's rules and the run, as the calls that apply it (pure).

Plan, then execute (as chalice's planner/executor): `build_plan` turns a run's recommendation
and the user's bounds into a frozen `PolicyPlan`; `--dry-run` renders its `calls()` as `aws`
commands (recommender.policy.render) and `recommender apply` hands the very same calls to
`recommender.apply` to execute.

The AWS emulator accepts what AWS rejects (MinCapacity > MaxCapacity, MinCapacity 0 on a
real-time variant, unknown metrics), so every such rule is checked here, before any call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from recommender.errors import ConfigError
from recommender.plan import DEFAULT_VARIANT
from recommender.policy.kinds import (
    KINDS,
    MAX_POLICY_NAME,
    METRICS,
    NO_CAPACITY_METRIC,
    POLICY_NAME,
    STEP_POLICY_NAME,
    Kind,
    Metric,
    MetricSpec,
    resource_id,
)
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
    round_target,
    serverless_sizing,
    target_value_for,
)
from recommender.policy.tracking import TargetTracking
from recommender.sizing import instances_for


@dataclass(frozen=True, kw_only=True)
class PolicyRequest(TargetTracking):
    """What the user asked `apply` for: the policy (TargetTracking's fields) and where it
    goes; `build_plan` checks it and fills the rest from the run."""

    # None: an inference component when the run measured one (or --inference-component is
    # given), else a variant.
    kind: Kind | None = None
    metric: Metric | None = None
    endpoint: str | None = None
    variant: str | None = None
    inference_component: str | None = None
    policy_name: str = POLICY_NAME
    scale_from_zero: bool = False
    peak_rps: float | None = None
    force: bool = False

    def below_floor(self, lo: int) -> ConfigError | None:
        kind = Kind(self.kind or Kind.VARIANT)
        floor = KINDS[kind].min_capacity_floor
        if lo >= floor:
            return None
        if kind is Kind.VARIANT and lo >= 0:
            return ConfigError(
                f"--min-capacity {lo}: a real-time variant needs at least 1 instance",
                "only asynchronous endpoints (--kind async) and inference components scale to 0",
            )
        return ConfigError(f"--min-capacity must be >= {floor} for --kind {kind.value} "
                           f"(got {lo})")  # fmt: skip

    def check(self) -> PolicyRequest:
        super().check()
        name = self.policy_name.strip()
        if not name or len(name) > MAX_POLICY_NAME:
            raise ConfigError(f"--policy-name must have 1 to {MAX_POLICY_NAME} characters")
        if self.scale_from_zero and self.kind is not Kind.ASYNC:
            raise ConfigError("--scale-from-zero is for --kind async")
        if self.scale_from_zero and self.min_capacity != 0:
            raise ConfigError(
                "--scale-from-zero needs --min-capacity 0",
                "with instances always running there is no zero to scale from",
            )
        p = self.peak_rps
        if p is not None and not (math.isfinite(p) and p > 0):
            raise ConfigError(f"--peak-rps must be > 0 (got {p:g})")
        return self


@dataclass(frozen=True, kw_only=True)
class PolicyPlan:
    kind: Kind
    endpoint: str | None
    variant: str | None
    inference_component: str | None
    resource_id: str
    dimension: str
    min_capacity: int
    max_capacity: int
    policies: tuple[PolicyState, ...]
    alarms: tuple[AlarmState, ...] = ()
    metric: MetricSpec | None = None
    target_value: float | None = None
    source: str = ""  # where the target value comes from
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def scope(self) -> Scope:
        return Scope(self.resource_id, self.dimension, tuple(a.name for a in self.alarms))

    def desired(self) -> State:
        return State(self.scope, TargetState(self.min_capacity, self.max_capacity),
                     self.policies, self.alarms)  # fmt: skip

    def calls(self) -> tuple[Call, ...]:
        """Register (or update) the target, put each policy, then the alarms wired to them."""
        scope = scope_params(self.resource_id, self.dimension)
        out = [Call("application-autoscaling", "RegisterScalableTarget",
                    {**scope, "MinCapacity": self.min_capacity,
                     "MaxCapacity": self.max_capacity})]  # fmt: skip
        out += [put_policy(self.resource_id, self.dimension, p) for p in self.policies]
        out += [put_alarm(a, {}, [p.name for p in self.policies]) for a in self.alarms]
        return tuple(out)


def build_plan(req: PolicyRequest, run: RunFacts | None = None) -> PolicyPlan:
    """Check the request against AWS's rules and the run, and plan the calls."""
    target = dict(run.target) if run else {}
    measured = target.get("inference_component")
    if req.kind is None:  # what the run measured, or what the flags name
        ic = measured or req.inference_component
        req = replace(req, kind=Kind.INFERENCE_COMPONENT if ic else
                      Kind.SERVERLESS if target.get("serverless") else
                      Kind.ASYNC if target.get("kind") == "async" else Kind.VARIANT)
    kind = Kind(req.kind)
    spec = KINDS[kind]
    metric = req.metric or Metric.INVOCATIONS
    if (kind, metric) not in METRICS:
        raise ConfigError(f"--metric {metric.value} is not available for --kind {kind.value}",
                          "leave --metric out")  # fmt: skip
    mspec = METRICS[(kind, metric)]
    if target.get("serverless") and kind is not Kind.SERVERLESS:
        raise ConfigError(f"the run {run.path if run else ''} measured a serverless variant, "
                          f"not --kind {kind.value}", "pass --kind serverless")  # fmt: skip
    if target.get("kind") == "async" and kind is not Kind.ASYNC:
        raise ConfigError(f"the run {run.path if run else ''} measured an asynchronous "
                          f"endpoint, not --kind {kind.value}", "pass --kind async")  # fmt: skip
    endpoint = req.endpoint or target.get("endpoint")
    variant = component = None
    if kind is Kind.INFERENCE_COMPONENT:
        component = req.inference_component or measured
        if not component:
            raise ConfigError("--kind inference-component needs --inference-component NAME")
    else:
        if measured and req.target() is None:
            raise ConfigError(f"the run measured inference component {measured}: its capacity "
                              "is per copy", "use --kind inference-component")  # fmt: skip
        if req.inference_component:
            raise ConfigError("--inference-component is for --kind inference-component")
        if not endpoint:
            raise ConfigError(
                "no endpoint to apply the policy to",
                "pass --endpoint NAME, or a run directory made with --endpoint",
            )
        variant = req.variant or target.get("variant") or DEFAULT_VARIANT

    lo, hi = req.min_capacity, req.max_capacity
    sized = (run.analysis.get("sizing") or {}) if run else {}
    if kind is Kind.SERVERLESS and run is not None and req.target() is None:
        sized = serverless_sizing(run)  # ProvisionedConcurrency's bounds, not instances
    if lo is None and hi is None and sized:
        lo, hi = int(sized["min_capacity"]), int(sized["max_capacity"])
    if lo is None or hi is None:
        raise ConfigError("pass --min-capacity and --max-capacity",
                          "or size them from traffic first: recommender report RUN_DIR "
                          "--peak-rps R")  # fmt: skip
    req = replace(req, min_capacity=lo, max_capacity=hi).check()
    name = req.policy_name.strip()

    value, source, from_run = target_value_for(req.target(), kind, metric, run)
    if kind is Kind.SERVERLESS and value > 1:
        raise ConfigError(f"--target-value {value:g} is not a utilization",
                          "give the share of provisioned concurrency in use, e.g. 0.5")  # fmt: skip
    warnings = check_trust(run, req.force) if run is not None and from_run else []
    value = round_target(value)

    notes = [f"Target value {value:g} {mspec.unit}: {source}."]
    if name != POLICY_NAME:
        notes.append(f"Policy name {name!r}: the SageMaker console shows it as a custom policy; "
                     f"{POLICY_NAME} shows as its built-in one.")  # fmt: skip
    if kind is Kind.INFERENCE_COMPONENT and from_run and not measured:
        notes.append("The target is per copy; the run measured per instance, so this assumes "
                     "one copy per instance tested (pass --target-value otherwise).")  # fmt: skip
    if kind is Kind.ASYNC and lo == 0 and not req.scale_from_zero:
        warnings.append("MinCapacity 0 without --scale-from-zero: at zero instances the "
                        "backlog per instance is undefined, so nothing scales the endpoint "
                        "up again. Add --scale-from-zero.")  # fmt: skip
    warnings += _peak_warning(req, run, kind, metric, value, hi)

    config: dict[str, Any] = {"TargetValue": value, **mspec.specification(endpoint),
                              "ScaleInCooldown": req.scale_in_cooldown,
                              "ScaleOutCooldown": req.scale_out_cooldown,
                              "DisableScaleIn": req.disable_scale_in}  # fmt: skip
    policies = [PolicyState(name, "TargetTrackingScaling", config)]
    alarms: list[AlarmState] = []
    if req.scale_from_zero:
        assert endpoint is not None
        policies.append(PolicyState(STEP_POLICY_NAME, "StepScaling", {
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Average",
            "Cooldown": req.scale_out_cooldown,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
        }))  # fmt: skip
        # Application Auto Scaling creates no alarm for a step policy: this one fires it
        # when requests wait with no instance to serve them (AWS's documented settings).
        alarms.append(AlarmState(f"{NO_CAPACITY_METRIC}-{endpoint}", {
            "AlarmDescription": f"Scale {endpoint} up from zero instances (recommender)",
            "MetricName": NO_CAPACITY_METRIC, "Namespace": "AWS/SageMaker",
            "Statistic": "Average", "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
            "Period": 60, "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "missing",
            "ActionsEnabled": True,
        }, policy=STEP_POLICY_NAME))  # fmt: skip
    return PolicyPlan(
        kind=kind, endpoint=endpoint, variant=variant, inference_component=component,
        resource_id=resource_id(kind, endpoint, variant, component), dimension=spec.dimension,
        min_capacity=lo, max_capacity=hi, policies=tuple(policies), alarms=tuple(alarms),
        metric=mspec, target_value=value, source=source, notes=tuple(notes),
        warnings=tuple(warnings),
    )


def _peak_warning(
    req: PolicyRequest, run: RunFacts | None, kind: Kind, metric: Metric, value: float, hi: int
) -> list[str]:
    """MaxCapacity below the instances (copies) the expected peak needs at this target."""
    sized = (run.analysis.get("sizing") or {}) if run else {}
    peak = req.peak_rps if req.peak_rps is not None else sized.get("peak_rps")
    if not peak or kind in (Kind.ASYNC, Kind.SERVERLESS):
        return []
    if metric is Metric.INVOCATIONS:
        needed, how = instances_for(float(peak), value), f"ceil({peak:g} x 60 / {value:g})"
    elif run is not None and run.analysis.get("recommendation"):
        per = float(run.analysis["recommendation"]["target_value"]) / 60.0
        needed, how = instances_for(float(peak), per * 60.0), f"ceil({peak:g} / {per:.1f})"
    else:
        return []
    if hi >= needed:
        return []
    unit = KINDS[kind].unit
    return [f"MaxCapacity {hi} is below the {needed} {unit} the expected peak of {peak:g} "
            f"requests/s needs at this target ({how}): beyond {hi} the SLO will not hold. "
            f"Raise --max-capacity to at least {needed}."]  # fmt: skip
