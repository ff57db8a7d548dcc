"""What is (or should be) there: the API calls, and the scalable target, policies and alarms
read back from Application Auto Scaling and CloudWatch (pure).

A `State` is what DescribeScalableTargets, DescribeScalingPolicies and DescribeAlarms say
about one `Scope`; it is saved before an apply (`to_dict`) and restored on rollback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recommender.errors import RunDirError
from recommender.policy.kinds import NAMESPACE


@dataclass(frozen=True)
class Call:
    """One API call: the service, the API's operation name and its request, as sent.

    `actions_from`: for PutMetricAlarm, the policy whose ARN becomes the alarm's action. The
    ARN exists only once that policy is put, earlier in the same list of calls.
    """

    service: str  # "application-autoscaling" | "cloudwatch"
    operation: str
    params: Mapping[str, Any]
    actions_from: str | None = None

    def label(self) -> str:
        p = self.params
        what = p.get("PolicyName") or p.get("AlarmName") or p.get("ResourceId")
        if what is None and p.get("AlarmNames"):
            what = ", ".join(p["AlarmNames"])
        return f"{self.operation} {what}" if what else self.operation


def scope_params(resource: str, dimension: str) -> dict[str, Any]:
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource, "ScalableDimension": dimension}


def put_policy(resource: str, dimension: str, p: PolicyState) -> Call:
    params = {"PolicyName": p.name, **scope_params(resource, dimension), "PolicyType": p.type,
              p.config_key: dict(p.configuration)}  # fmt: skip
    return Call("application-autoscaling", "PutScalingPolicy", params)


def put_alarm(a: AlarmState, arns: Mapping[str, str], pending: Iterable[str]) -> Call:
    """The alarm's action is its policy's ARN: `arns` has those already there; a policy in
    `pending` is put earlier in the same calls, so its ARN is filled in once known."""
    params: dict[str, Any] = {"AlarmName": a.name, **a.params}
    if a.policy is not None and a.policy in set(pending):
        return Call("cloudwatch", "PutMetricAlarm", params, actions_from=a.policy)
    actions = [arns[a.policy]] if a.policy is not None and a.policy in arns else list(a.actions)
    if actions:
        params["AlarmActions"] = actions
    return Call("cloudwatch", "PutMetricAlarm", params)


# --- state: what is (or should be) there ------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one plan touches: one scalable target, its policies, and the alarms it puts."""

    resource_id: str
    dimension: str
    alarm_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**scope_params(self.resource_id, self.dimension),
                "AlarmNames": list(self.alarm_names)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scope:
        return cls(str(d["ResourceId"]), str(d["ScalableDimension"]),
                   tuple(str(n) for n in d.get("AlarmNames") or ()))  # fmt: skip


@dataclass(frozen=True)
class TargetState:
    min_capacity: int
    max_capacity: int
    # Kept to restore exactly; the plan itself leaves it as it is (None).
    suspended: Mapping[str, bool] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PolicyState:
    name: str
    type: str  # "TargetTrackingScaling" | "StepScaling" | ...
    configuration: Mapping[str, Any]  # the policy type's configuration, as the API takes it
    arn: str | None = field(default=None, compare=False)
    alarms: tuple[str, ...] = field(default=(), compare=False)  # the ones AWS created for it

    @property
    def config_key(self) -> str:
        return f"{self.type}PolicyConfiguration"

    def normalized(self) -> Any:
        """The configuration with AWS's defaults filled in, for comparing."""
        if self.type != "TargetTrackingScaling":
            return (self.type, _canonical(self.configuration))
        c = dict(self.configuration)
        return (
            self.type,
            float(c.get("TargetValue", math.nan)),
            _canonical(_metric_spec(c)),
            c.get("ScaleInCooldown"),
            c.get("ScaleOutCooldown"),
            bool(c.get("DisableScaleIn", False)),
        )


@dataclass(frozen=True)
class AlarmState:
    """A CloudWatch alarm as PutMetricAlarm takes it. `policy`: the scaling policy (by name,
    in the same scope) its action invokes, since that policy's ARN may change on a re-put."""

    name: str
    params: Mapping[str, Any]  # PutMetricAlarm's request less AlarmName and AlarmActions
    actions: tuple[str, ...] = ()
    policy: str | None = None

    def same_as(self, other: AlarmState) -> bool:
        return _canonical(self.params) == _canonical(other.params) and self.policy == other.policy


@dataclass(frozen=True)
class State:
    scope: Scope
    target: TargetState | None
    policies: tuple[PolicyState, ...] = ()
    alarms: tuple[AlarmState, ...] = ()

    def policy(self, name: str) -> PolicyState | None:
        return next((p for p in self.policies if p.name == name), None)

    def alarm(self, name: str) -> AlarmState | None:
        return next((a for a in self.alarms if a.name == name), None)

    @property
    def empty(self) -> bool:
        return self.target is None and not self.policies and not self.alarms

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            "scope": self.scope.to_dict(),
            "target": None if t is None else {
                "MinCapacity": t.min_capacity, "MaxCapacity": t.max_capacity,
                "SuspendedState": dict(t.suspended) if t.suspended is not None else None,
            },
            "policies": [{"PolicyName": p.name, "PolicyType": p.type,
                          p.config_key: p.configuration, "PolicyARN": p.arn,
                          "Alarms": list(p.alarms)} for p in self.policies],
            "alarms": [{"AlarmName": a.name, **a.params, "AlarmActions": list(a.actions),
                        "policy": a.policy} for a in self.alarms],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> State:
        try:
            scope = Scope.from_dict(d["scope"])
            t = d.get("target")
            target = None if t is None else TargetState(
                int(t["MinCapacity"]), int(t["MaxCapacity"]), t.get("SuspendedState"))  # fmt: skip
            policies = tuple(_policy_from_api(p) for p in d.get("policies") or ())
            alarms = tuple(
                AlarmState(
                    str(a["AlarmName"]),
                    {k: v for k, v in a.items()
                     if k not in ("AlarmName", "AlarmActions", "policy")},  # fmt: skip
                    tuple(a.get("AlarmActions") or ()),
                    a.get("policy"),
                )
                for a in d.get("alarms") or ()
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"the saved autoscaling state is malformed ({exc!r})") from exc
        return cls(scope, target, policies, alarms)


def _canonical(value: Any) -> str:
    """A comparable text of a configuration: AWS may hand back 0.0 for the 0 we sent."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, Mapping):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, default=str)


def _metric_spec(config: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("PredefinedMetricSpecification", "CustomizedMetricSpecification"):
        if config.get(key):
            return {key: config[key]}
    return {}


def _policy_from_api(p: Mapping[str, Any]) -> PolicyState:
    kind = str(p["PolicyType"])
    return PolicyState(
        str(p["PolicyName"]),
        kind,
        dict(p.get(f"{kind}PolicyConfiguration") or {}),
        p.get("PolicyARN"),
        tuple(str(a["AlarmName"] if isinstance(a, Mapping) else a) for a in p.get("Alarms") or ()),
    )


# PutMetricAlarm's request keys a described alarm carries; the rest (state, ARN, times) is not
# configuration. Empty lists are left out: moto returns `Metrics: []`, which AWS would refuse
# beside MetricName.
_ALARM_KEYS = (
    "AlarmDescription", "ActionsEnabled", "OKActions", "InsufficientDataActions", "MetricName",
    "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit",
    "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
    "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId",
)  # fmt: skip


def alarm_params(described: Mapping[str, Any]) -> dict[str, Any]:
    return {k: described[k] for k in _ALARM_KEYS if described.get(k) not in (None, [], "")}


def state_from_api(
    scope: Scope,
    targets: Iterable[Mapping[str, Any]],
    policies: Iterable[Mapping[str, Any]],
    alarms: Iterable[Mapping[str, Any]],
) -> State:
    """A State from DescribeScalableTargets, DescribeScalingPolicies and DescribeAlarms."""
    def ours(x: Mapping[str, Any]) -> bool:
        return x.get("ResourceId") == scope.resource_id and (
            x.get("ScalableDimension") == scope.dimension
        )

    target = None
    for t in targets:
        if ours(t):
            target = TargetState(int(t["MinCapacity"]), int(t["MaxCapacity"]),
                                 t.get("SuspendedState"))  # fmt: skip
    mine = tuple(
        _policy_from_api(p)
        for p in policies
        if ours(p)
    )
    by_arn = {p.arn: p.name for p in mine if p.arn}
    found = tuple(
        AlarmState(
            str(a["AlarmName"]),
            alarm_params(a),
            tuple(a.get("AlarmActions") or ()),
            next((by_arn[x] for x in a.get("AlarmActions") or () if x in by_arn), None),
        )
        for a in alarms
        if a.get("AlarmName") in scope.alarm_names
    )
    return State(scope, target, mine, found)
