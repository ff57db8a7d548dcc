"""The autoscaling policy as data: the Application Auto Scaling calls that apply it (pure).

Plan, then execute (as chalice's planner/executor): `build_plan` turns a run's
recommendation and the user's bounds into a frozen `PolicyPlan`; `--dry-run` renders its
`calls()` as `aws application-autoscaling ...` commands (`format_commands`, the one place
that renders them, for the reports too) and `recommender apply` hands the very same calls
to `recommender.apply` to execute. What is there is read into a `State`; `diff` compares
two States field by field, and `restore_calls` computes the calls that bring a saved State
back (rollback), including "there was nothing" (delete, deregister).

What each kind scales (AWS, "Amazon SageMaker and Application Auto Scaling"):

    kind                 scalable dimension                               resource id
    variant              sagemaker:variant:DesiredInstanceCount           endpoint/<e>/variant/<v>
    async                sagemaker:variant:DesiredInstanceCount           endpoint/<e>/variant/<v>
    serverless           sagemaker:variant:DesiredProvisionedConcurrency  endpoint/<e>/variant/<v>
    inference-component  sagemaker:inference-component:DesiredCopyCount   inference-component/<n>

The AWS emulator accepts what AWS rejects (MinCapacity > MaxCapacity, MinCapacity 0 on a
real-time variant, unknown metrics), so every such rule is checked here, before any call.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from recommender.errors import ConfigError, InsufficientDataError, RunDirError
from recommender.sizing import (
    DEFAULT_MIN_CAPACITY_FLOOR,
    Sizing,
    default_capacity_range,
    instances_for,
)

if TYPE_CHECKING:
    from recommender.analysis import Analysis

NAMESPACE = "sagemaker"
# The name that makes the SageMaker console show the policy as its built-in one; any other
# name shows as an opaque "custom" policy there (shared/reference/004_*).
POLICY_NAME = "SageMakerEndpointInvocationScalingPolicy"
POLICY_FILE = "target_tracking_scaling_policy.json"
STEP_POLICY_FILE = "step_scaling_policy.json"
STATE_FILE = "autoscaling_state.json"
DEFAULT_VARIANT = "AllTraffic"
COOLDOWN_SECONDS = 300  # SageMaker's default for variants, in and out
# AWS's own names in "Autoscale an asynchronous endpoint" (scaling up from zero).
STEP_POLICY_NAME = "HasBacklogWithoutCapacity-ScalingPolicy"
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"
MAX_POLICY_NAME = 256  # PolicyName's length limit in the Application Auto Scaling API

VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALABLE_DIMENSION = VARIANT_DIMENSION  # the reports' name for it
SERVERLESS_DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"


class Kind(str, Enum):
    VARIANT = "variant"
    ASYNC = "async"
    SERVERLESS = "serverless"
    INFERENCE_COMPONENT = "inference-component"


class Metric(str, Enum):
    INVOCATIONS = "invocations"
    CONCURRENCY = "concurrency"


@dataclass(frozen=True)
class MetricSpec:
    """What a target value counts, and the specification that names the metric."""

    name: str  # predefined metric type, or the customized metric's name
    unit: str  # what one unit of the target value is, for people
    predefined: bool = True

    def specification(self, endpoint: str | None) -> dict[str, Any]:
        if self.predefined:
            return {"PredefinedMetricSpecification": {"PredefinedMetricType": self.name}}
        return {
            "CustomizedMetricSpecification": {
                "MetricName": self.name,
                "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Statistic": "Average",
            }
        }


METRICS: dict[tuple[Kind, Metric], MetricSpec] = {
    (Kind.VARIANT, Metric.INVOCATIONS): MetricSpec(
        "SageMakerVariantInvocationsPerInstance", "invocations per instance per minute"
    ),
    (Kind.VARIANT, Metric.CONCURRENCY): MetricSpec(
        "SageMakerVariantConcurrentRequestsPerModelHighResolution",
        "concurrent requests per instance",
    ),
    (Kind.ASYNC, Metric.INVOCATIONS): MetricSpec(
        BACKLOG_METRIC, "queued requests per instance", predefined=False
    ),
    (Kind.SERVERLESS, Metric.INVOCATIONS): MetricSpec(
        "SageMakerVariantProvisionedConcurrencyUtilization",
        "share of the provisioned concurrency in use",
    ),
    (Kind.INFERENCE_COMPONENT, Metric.INVOCATIONS): MetricSpec(
        "SageMakerInferenceComponentInvocationsPerCopy", "invocations per copy per minute"
    ),
    (Kind.INFERENCE_COMPONENT, Metric.CONCURRENCY): MetricSpec(
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution",
        "concurrent requests per copy",
    ),
}


@dataclass(frozen=True)
class KindSpec:
    dimension: str
    min_capacity_floor: int  # the least MinCapacity AWS accepts for this kind
    unit: str  # what capacity counts


KINDS: dict[Kind, KindSpec] = {
    Kind.VARIANT: KindSpec(VARIANT_DIMENSION, 1, "instance(s)"),
    # Asynchronous endpoints queue requests, so they may scale in to no instance at all.
    Kind.ASYNC: KindSpec(VARIANT_DIMENSION, 0, "instance(s)"),
    Kind.SERVERLESS: KindSpec(SERVERLESS_DIMENSION, 1, "provisioned concurrency"),
    Kind.INFERENCE_COMPONENT: KindSpec(COMPONENT_DIMENSION, 0, "copies"),
}


def resource_id(
    kind: Kind, endpoint: str | None, variant: str | None, component: str | None
) -> str:
    if kind is Kind.INFERENCE_COMPONENT:
        return f"inference-component/{component}"
    return f"endpoint/{endpoint}/variant/{variant}"


# --- the calls ---------------------------------------------------------------------------


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


def _scope_params(resource: str, dimension: str) -> dict[str, Any]:
    return {"ServiceNamespace": NAMESPACE, "ResourceId": resource, "ScalableDimension": dimension}


# --- state: what is (or should be) there ------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one plan touches: one scalable target, its policies, and the alarms it puts."""

    resource_id: str
    dimension: str
    alarm_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**_scope_params(self.resource_id, self.dimension),
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


# --- the plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRequest:
    """What the user asked for; `build_plan` checks it and fills the rest from the run."""

    kind: Kind = Kind.VARIANT
    metric: Metric | None = None
    endpoint: str | None = None
    variant: str | None = None
    inference_component: str | None = None
    target_value: str | float | None = None  # the CLI's text: parsed and checked here
    min_capacity: int | None = None
    max_capacity: int | None = None
    policy_name: str = POLICY_NAME
    scale_in_cooldown: int = COOLDOWN_SECONDS
    scale_out_cooldown: int = COOLDOWN_SECONDS
    disable_scale_in: bool = False
    scale_from_zero: bool = False
    peak_rps: float | None = None
    force: bool = False


@dataclass(frozen=True)
class RunFacts:
    """What a run directory says: run.json's `target` and analysis.json."""

    path: str
    target: Mapping[str, Any]
    analysis: Mapping[str, Any]


@dataclass(frozen=True)
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
        scope = _scope_params(self.resource_id, self.dimension)
        out = [Call("application-autoscaling", "RegisterScalableTarget",
                    {**scope, "MinCapacity": self.min_capacity,
                     "MaxCapacity": self.max_capacity})]  # fmt: skip
        out += [_put_policy(self.resource_id, self.dimension, p) for p in self.policies]
        out += [_put_alarm(a, {}, [p.name for p in self.policies]) for a in self.alarms]
        return tuple(out)


def _put_policy(resource: str, dimension: str, p: PolicyState) -> Call:
    params = {"PolicyName": p.name, **_scope_params(resource, dimension), "PolicyType": p.type,
              p.config_key: dict(p.configuration)}  # fmt: skip
    return Call("application-autoscaling", "PutScalingPolicy", params)


def _put_alarm(a: AlarmState, arns: Mapping[str, str], pending: Iterable[str]) -> Call:
    """The alarm's action is its policy's ARN: `arns` has those already there; a policy in
    `pending` is put earlier in the same calls, so its ARN is filled in once known."""
    params: dict[str, Any] = {"AlarmName": a.name, **a.params}
    if a.policy is not None and a.policy in set(pending):
        return Call("cloudwatch", "PutMetricAlarm", params, actions_from=a.policy)
    actions = [arns[a.policy]] if a.policy is not None and a.policy in arns else list(a.actions)
    if actions:
        params["AlarmActions"] = actions
    return Call("cloudwatch", "PutMetricAlarm", params)


def parse_number(text: str | float, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number (got {text!r})",
                          "e.g. --target-value 1200") from None  # fmt: skip
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a finite number > 0 (got {text!r})")
    return value


def _round_target(value: float) -> float:
    # One decimal is plenty for invocations per minute (thousands); utilization and
    # concurrency targets are small numbers that need more.
    return round(value, 1) if value >= 10 else round(value, 3)


def trust_problems(analysis: Mapping[str, Any]) -> list[str]:
    """Why a run's capacity should not drive a policy, or [] when nothing stands out."""
    problems = []
    if analysis.get("recommendation") is None:
        problems.append("it has no recommendation (no stage passed the SLO)")
    capacity = analysis.get("capacity") or {}
    method = capacity.get("method")
    if method != "interpolated" and analysis.get("recommendation") is not None:
        problems.append(
            f"its capacity is a {str(method).replace('_', ' ')}, not interpolated between a "
            "passing and a failing stage (raise --max-rps until a stage fails)"
        )
    failing = capacity.get("failing_stage")
    slo = analysis.get("slo") or {}
    stage = next((s for s in analysis.get("stages") or () if s.get("index") == failing), None)
    if stage is not None and slo and failing is not None:
        limits = {str(t["stat"]): float(t["limit_ms"]) for t in slo.get("terms") or ()}
        values = stage.get("slo_values_ms") or {}
        latency_ok = all(values.get(k) is not None and values[k] <= v for k, v in limits.items())
        if latency_ok and float(stage.get("error_rate") or 0) > float(slo.get("max_error_rate", 0)):
            problems.append(
                f"stage {int(failing) + 1} failed by errors ({stage['error_rate']:.1%}) while "
                "its latency was within the SLO: errors, not load, set the capacity (check "
                "the endpoint's logs and quotas)"
            )
    problems += [
        str(w.get("message"))
        for w in analysis.get("warnings") or ()
        if w.get("code") == "generator_limited"
    ]
    return problems


def concurrency_target(analysis: Mapping[str, Any]) -> tuple[float, str]:
    """Concurrent requests per instance at the recommended load, by Little's law
    (L = lambda x W): the rate per instance at the target times the mean latency there,
    interpolated linearly in the stage table (p50 where a stage has no mean)."""
    rec = analysis["recommendation"]
    rate = float(rec["target_value"]) / 60.0  # requests/s per instance at the target
    instances = int((analysis.get("capacity") or {}).get("instances") or 1)
    points = sorted(
        (float(s["achieved_rps"]) / instances, float(s.get("mean_ms") or s.get("p50_ms")))
        for s in analysis.get("stages") or ()
        if (s.get("mean_ms") or s.get("p50_ms")) and s.get("achieved_rps")
    )
    if not points:
        raise InsufficientDataError("the run's stages have no latency to apply Little's law to",
                                    "pass --target-value")  # fmt: skip
    latency_ms = _interpolate(rate, points)
    value = rate * latency_ms / 1000.0
    return value, (
        f"target = requests/s per instance at the target x mean latency there = {rate:.2f} x "
        f"{latency_ms / 1000:.4f} s = {_round_target(value):g} concurrent requests per instance "
        "(Little's law)"
    )


def _interpolate(x: float, points: Sequence[tuple[float, float]]) -> float:
    """Piecewise-linear y(x) through sorted points, held flat beyond the ends."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):  # noqa: B905 - one shorter by design
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def _recommended(run: RunFacts) -> Mapping[str, Any]:
    rec = run.analysis.get("recommendation")
    if not isinstance(rec, Mapping):
        raise InsufficientDataError(
            f"the run {run.path} has no recommendation (no stage passed the SLO)",
            "re-run with a lower --start-rps or a looser --slo, or pass --target-value",
        )
    value = rec.get("target_value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"analysis.json's target value is not a number (got {value!r})",
                          f"re-run `recommender analyze {run.path}`")  # fmt: skip
    return rec


def _target_value(
    req: PolicyRequest, kind: Kind, metric: Metric, run: RunFacts | None
) -> tuple[float, str, bool]:
    """(value, where it comes from, whether it comes from the run's capacity)."""
    if req.target_value is not None:
        return parse_number(req.target_value, "--target-value"), "given with --target-value", False
    if kind is Kind.ASYNC:
        raise ConfigError(
            "--kind async needs --target-value (queued requests per instance)",
            "a load test measures the real-time path, not the queue; AWS's example uses 5",
        )
    if run is None:
        raise ConfigError("no target value", "pass --target-value, or a run directory")
    rec = _recommended(run)
    if kind is Kind.SERVERLESS:
        factor = float(rec.get("safety_factor") or 0.5)
        return factor, (
            f"the run's safety factor: keep {factor:.0%} of the provisioned concurrency in use"
        ), True
    if metric is Metric.CONCURRENCY:
        value, formula = concurrency_target(run.analysis)
        return value, formula, True
    return float(rec["target_value"]), str(rec.get("formula") or "the run's recommendation"), True


def _check_trust(run: RunFacts, force: bool) -> list[str]:
    problems = trust_problems(run.analysis)
    if problems and not force:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InsufficientDataError(
            f"the run {run.path} is not a trustworthy basis for a policy: {problems[0]}{more}",
            "re-run the load test, or pass --force to apply it anyway",
        )
    return [f"--force: applying despite: {p}" for p in problems]


def build_plan(req: PolicyRequest, run: RunFacts | None = None) -> PolicyPlan:
    """Check the request against AWS's rules and the run, and plan the calls."""
    kind = Kind(req.kind)
    spec = KINDS[kind]
    metric = req.metric or Metric.INVOCATIONS
    if (kind, metric) not in METRICS:
        raise ConfigError(f"--metric {metric.value} is not available for --kind {kind.value}",
                          "leave --metric out")  # fmt: skip
    mspec = METRICS[(kind, metric)]
    target = dict(run.target) if run else {}
    endpoint = req.endpoint or target.get("endpoint")
    variant = component = None
    if kind is Kind.INFERENCE_COMPONENT:
        component = req.inference_component
        if not component:
            raise ConfigError("--kind inference-component needs --inference-component NAME")
    else:
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
    if lo is None and hi is None and sized:
        lo, hi = int(sized["min_capacity"]), int(sized["max_capacity"])
    if lo is None or hi is None:
        raise ConfigError("pass --min-capacity and --max-capacity",
                          "or size them from traffic first: recommender report RUN_DIR "
                          "--peak-rps R")  # fmt: skip
    if lo < spec.min_capacity_floor:
        if kind is Kind.VARIANT and lo >= 0:
            raise ConfigError(
                f"--min-capacity {lo}: a real-time variant needs at least 1 instance",
                "only asynchronous endpoints (--kind async) and inference components scale to 0",
            )
        raise ConfigError(f"--min-capacity must be >= {spec.min_capacity_floor} for "
                          f"--kind {kind.value} (got {lo})")  # fmt: skip
    if hi < 1:
        raise ConfigError(f"--max-capacity must be >= 1 (got {hi})")
    if lo > hi:
        raise ConfigError(f"--min-capacity ({lo}) is above --max-capacity ({hi})",
                          "MinCapacity must be <= MaxCapacity")  # fmt: skip
    for flag, seconds in (("--scale-in-cooldown", req.scale_in_cooldown),
                          ("--scale-out-cooldown", req.scale_out_cooldown)):  # fmt: skip
        if seconds < 0:
            raise ConfigError(f"{flag} must be >= 0 seconds (got {seconds})")
    name = req.policy_name.strip()
    if not name or len(name) > MAX_POLICY_NAME:
        raise ConfigError(f"--policy-name must have 1 to {MAX_POLICY_NAME} characters")
    if req.scale_from_zero and kind is not Kind.ASYNC:
        raise ConfigError("--scale-from-zero is for --kind async")
    if req.scale_from_zero and lo != 0:
        raise ConfigError(
            "--scale-from-zero needs --min-capacity 0",
            "with instances always running there is no zero to scale from",
        )
    if req.peak_rps is not None and not (math.isfinite(req.peak_rps) and req.peak_rps > 0):
        raise ConfigError(f"--peak-rps must be > 0 (got {req.peak_rps:g})")

    value, source, from_run = _target_value(req, kind, metric, run)
    if kind is Kind.SERVERLESS and value > 1:
        raise ConfigError(f"--target-value {value:g} is not a utilization",
                          "give the share of provisioned concurrency in use, e.g. 0.5")  # fmt: skip
    warnings = _check_trust(run, req.force) if run is not None and from_run else []
    value = _round_target(value)

    notes = [f"Target value {value:g} {mspec.unit}: {source}."]
    if name != POLICY_NAME:
        notes.append(f"Policy name {name!r}: the SageMaker console shows it as a custom policy; "
                     f"{POLICY_NAME} shows as its built-in one.")  # fmt: skip
    if kind is Kind.INFERENCE_COMPONENT and from_run:
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
        kind, endpoint, variant, component, resource_id(kind, endpoint, variant, component),
        spec.dimension, lo, hi, tuple(policies), tuple(alarms), mspec, value, source,
        tuple(notes), tuple(warnings),
    )  # fmt: skip


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


# --- comparing and restoring -------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    subject: str  # "scalable target", "policy NAME", "alarm NAME"
    field: str
    before: str
    after: str


NONE = "(none)"


def _show(value: Any) -> str:
    if value is None:
        return "(default)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.1f}"
    return str(value)


def describe_metric(config: Mapping[str, Any]) -> str:
    if config.get("PredefinedMetricSpecification"):
        return str(config["PredefinedMetricSpecification"].get("PredefinedMetricType"))
    c = config.get("CustomizedMetricSpecification")
    if c:
        dims = ",".join(f"{d['Name']}={d['Value']}" for d in c.get("Dimensions") or ())
        return f"{c.get('Namespace')}/{c.get('MetricName')} ({c.get('Statistic')}; {dims})"
    return NONE


def _policy_fields(p: PolicyState | None) -> dict[str, str]:
    if p is None:
        return {}
    if p.type != "TargetTrackingScaling":
        return {"PolicyType": p.type, p.config_key: json.dumps(p.configuration, sort_keys=True)}
    c = p.configuration
    return {
        "PolicyType": p.type,
        "metric": describe_metric(c),
        "TargetValue": _show(c.get("TargetValue")),
        "ScaleInCooldown": _show(c.get("ScaleInCooldown")),
        "ScaleOutCooldown": _show(c.get("ScaleOutCooldown")),
        "DisableScaleIn": _show(bool(c.get("DisableScaleIn", False))),
    }


def _alarm_fields(a: AlarmState | None) -> dict[str, str]:
    if a is None:
        return {}
    p = a.params
    rule = (f"{p.get('MetricName')} {p.get('Statistic')} {p.get('ComparisonOperator')} "
            f"{_show(p.get('Threshold'))}")  # fmt: skip
    return {
        "rule": rule,
        "datapoints": f"{p.get('DatapointsToAlarm')} of {p.get('EvaluationPeriods')} x "
        f"{p.get('Period')} s",
        "action": f"policy {a.policy}" if a.policy else ", ".join(a.actions) or NONE,
    }


def _field_changes(subject: str, before: dict[str, str], after: dict[str, str]) -> list[Change]:
    keys = list(after) + [k for k in before if k not in after]
    return [Change(subject, k, before.get(k, NONE), after.get(k, NONE))
            for k in keys if before.get(k, NONE) != after.get(k, NONE)]  # fmt: skip


def diff(current: State, wanted: State, *, exact: bool = False) -> list[Change]:
    """What would change to go from `current` to `wanted`.

    `exact=False` (apply): policies and alarms that `wanted` does not name are left alone.
    `exact=True` (rollback): they go.
    """
    out: list[Change] = []
    t0, t1 = current.target, wanted.target
    if t0 != t1 and (t1 is not None or exact):
        before = {} if t0 is None else {"MinCapacity": str(t0.min_capacity),
                                        "MaxCapacity": str(t0.max_capacity)}  # fmt: skip
        after = {} if t1 is None else {"MinCapacity": str(t1.min_capacity),
                                       "MaxCapacity": str(t1.max_capacity)}  # fmt: skip
        out += _field_changes("scalable target", before, after)
    names = [p.name for p in wanted.policies]
    if exact:
        names += [p.name for p in current.policies if p.name not in names]
    for name in names:
        old, new = current.policy(name), wanted.policy(name)
        if old is None or new is None or old.normalized() != new.normalized():
            fields = _field_changes(f"policy {name}", _policy_fields(old), _policy_fields(new))
            # Equal in what we show, different underneath: say so rather than hide it.
            out += fields or [Change(f"policy {name}", "configuration", "other", "as planned")]
    alarm_names = [a.name for a in wanted.alarms]
    if exact:
        alarm_names += [a.name for a in current.alarms if a.name not in alarm_names]
    for name in alarm_names:
        olda, newa = current.alarm(name), wanted.alarm(name)
        if olda is None or newa is None or not olda.same_as(newa):
            out += _field_changes(f"alarm {name}", _alarm_fields(olda), _alarm_fields(newa)) or [
                Change(f"alarm {name}", "configuration", "other", "as planned")]  # fmt: skip
    return out


def restore_calls(current: State, saved: State) -> tuple[Call, ...]:
    """The calls that turn `current` back into `saved`, within saved's scope.

    Policies and alarms that were not there go first (a target is deregistered only once
    its policies are gone); then the target, then the policies, then the alarms wired to
    them, each only where it differs.
    """
    scope = saved.scope
    common = _scope_params(scope.resource_id, scope.dimension)
    calls = [
        Call("application-autoscaling", "DeleteScalingPolicy", {"PolicyName": p.name, **common})
        for p in current.policies
        if saved.policy(p.name) is None or saved.target is None
    ]
    gone = [a.name for a in current.alarms if saved.alarm(a.name) is None]
    if gone:
        calls.append(Call("cloudwatch", "DeleteAlarms", {"AlarmNames": gone}))
    if saved.target is None:
        if current.target is not None:
            calls.append(Call("application-autoscaling", "DeregisterScalableTarget", common))
    elif saved.target != current.target or saved.target.suspended != (
        current.target.suspended if current.target else None
    ):
        t = saved.target
        params: dict[str, Any] = {**common, "MinCapacity": t.min_capacity,
                                  "MaxCapacity": t.max_capacity}  # fmt: skip
        if t.suspended is not None:
            params["SuspendedState"] = dict(t.suspended)
        calls.append(Call("application-autoscaling", "RegisterScalableTarget", params))
    put = set()
    if saved.target is not None:
        for p in saved.policies:
            now = current.policy(p.name)
            if now is None or now.normalized() != p.normalized():
                calls.append(_put_policy(scope.resource_id, scope.dimension, p))
                put.add(p.name)
    arns = {p.name: p.arn for p in current.policies if p.arn}
    for a in saved.alarms:
        now_a = current.alarm(a.name)
        if now_a is None or not now_a.same_as(a) or a.policy in put:
            calls.append(_put_alarm(a, arns, put))
    return tuple(calls)


# --- rendering (text only; the CLI prints it) ---------------------------------------------


def kebab(name: str) -> str:
    """An API name as the AWS CLI spells it: RegisterScalableTarget -> register-scalable-target."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


_FILE_NAMES = {
    "TargetTrackingScalingPolicyConfiguration": POLICY_FILE,
    "StepScalingPolicyConfiguration": STEP_POLICY_FILE,
}


def command_files(calls: Sequence[Call]) -> dict[str, Any]:
    """The JSON files the commands take via file://, by name, in the order they are used."""
    files: dict[str, Any] = {}
    for call in calls:
        for key, value in call.params.items():
            if isinstance(value, Mapping):
                files[_file_name(files, key)] = value
    return files


def _file_name(taken: Mapping[str, Any], key: str) -> str:
    base = _FILE_NAMES.get(key, f"{kebab(key)}.json")
    name, n = base, 1
    while name in taken:
        n += 1
        stem, dot, ext = base.rpartition(".")
        name = f"{stem}-{n}{dot}{ext}"
    return name


def _arg(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        # A list of flat structures in the CLI's shorthand (Name=EndpointName,Value=x), else
        # one argument per item.
        return [",".join(f"{k}={v}" for k, v in item.items()) if isinstance(item, Mapping)
                else str(item) for item in value]  # fmt: skip
    return [repr(value) if isinstance(value, float) else str(value)]


def format_commands(calls: Sequence[Call], config_dir: str | None = None) -> str:
    """The calls as `aws` commands, one block each, copy-paste ready.

    Structured parameters (a policy's configuration) go through files: with `config_dir`
    None each file is written by a heredoc just before the command that reads it, so the
    text stands alone (the reports); otherwise the commands read them from `config_dir`,
    where `--dry-run` wrote them. A policy an alarm invokes has its ARN captured in a shell
    variable, since it is known only once the policy is put.
    """
    q = shlex.quote
    taken: dict[str, Any] = {}
    variables: dict[str, str] = {}
    needed = {c.actions_from for c in calls if c.actions_from}
    blocks = []
    for call in calls:
        args = [f"aws {call.service} {kebab(call.operation)}"]
        before = []
        for key, value in call.params.items():
            if isinstance(value, Mapping):
                name = _file_name(taken, key)
                taken[name] = value
                path = name if config_dir in (None, ".", "") else f"{config_dir.rstrip('/')}/{name}"
                if config_dir is None:
                    before.append(f"cat > {q(path)} <<'EOF'\n{json.dumps(value, indent=2)}\nEOF")
                args.append(f"--{kebab(key)} {q('file://' + path)}")
            elif isinstance(value, bool):  # the AWS CLI's booleans are --flag / --no-flag
                args.append(f"--{'' if value else 'no-'}{kebab(key)}")
            else:
                args.append(f"--{kebab(key)} " + " ".join(q(v) for v in _arg(value)))
        if call.actions_from:
            args.append(f'--alarm-actions "${variables[call.actions_from]}"')
        policy = call.params.get("PolicyName")
        text = " \\\n  ".join(args)
        if call.operation == "PutScalingPolicy" and policy in needed:
            var = "POLICY_ARN" if not variables else f"POLICY_ARN_{len(variables) + 1}"
            variables[str(policy)] = var
            text = f"{var}=$({text} \\\n  --query PolicyARN --output text)"
        blocks += before + [text]
    return "\n\n".join(blocks) + "\n"


def format_plan(plan: PolicyPlan) -> str:
    """What the plan puts where, with its notes and warnings."""
    where = (f"inference component {plan.inference_component}"
             if plan.kind is Kind.INFERENCE_COMPONENT
             else f"endpoint {plan.endpoint}, variant {plan.variant}")  # fmt: skip
    lines = [f"Plan for {where} ({plan.kind.value}): {plan.resource_id} "
             f"[{plan.dimension}], MinCapacity {plan.min_capacity}, "
             f"MaxCapacity {plan.max_capacity}"]  # fmt: skip
    for p in plan.policies:
        if p.type == "TargetTrackingScaling":
            c = p.configuration
            lines.append(f"  {p.name}: TargetTrackingScaling on {describe_metric(c)}, target "
                         f"{_show(c['TargetValue'])}, cooldowns in {c['ScaleInCooldown']} s / "
                         f"out {c['ScaleOutCooldown']} s"
                         + (", scale-in disabled" if c.get("DisableScaleIn") else ""))  # fmt: skip
        else:
            lines.append(f"  {p.name}: {p.type}, one more instance while the alarm is on")
    for a in plan.alarms:
        f = _alarm_fields(a)
        lines.append(f"  alarm {a.name}: {f['rule']}, {f['datapoints']} -> {f['action']}")
    lines += [f"note: {n}" for n in plan.notes]
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def format_changes(changes: Sequence[Change], against: str = "the plan") -> str:
    if not changes:
        return f"No change: what is there already matches {against}.\n"
    lines = ["Changes:"]
    subject = None
    for c in changes:
        if c.subject != subject:
            subject = c.subject
            lines.append(f"  {subject}:")
        lines.append(f"    {c.field}: {c.before} -> {c.after}")
    return "\n".join(lines) + "\n"


def format_state(state: State, alarms: Sequence[Mapping[str, Any]] | None = None) -> str:
    """A State as read back, with the CloudWatch alarms AWS made for its policies (when
    `alarms` is given: DescribeAlarms' MetricAlarms for the policies' alarm names)."""
    s = state.scope
    t = state.target
    lines = [f"{s.resource_id} [{s.dimension}]: " + (
        "not registered" if t is None
        else f"MinCapacity {t.min_capacity}, MaxCapacity {t.max_capacity}")]  # fmt: skip
    for p in state.policies:
        f = _policy_fields(p)
        if p.type == "TargetTrackingScaling":
            lines.append(f"  policy {p.name}: {p.type} on {f['metric']}, TargetValue "
                         f"{f['TargetValue']}, ScaleInCooldown {f['ScaleInCooldown']}, "
                         f"ScaleOutCooldown {f['ScaleOutCooldown']}, DisableScaleIn "
                         f"{f['DisableScaleIn']}")  # fmt: skip
        else:
            lines.append(f"  policy {p.name}: {p.type} {f[p.config_key]}")
    for a in state.alarms:
        f = _alarm_fields(a)
        lines.append(f"  alarm {a.name}: {f['rule']}, {f['datapoints']} -> {f['action']}")
    if state.policies and alarms is not None:
        if alarms:
            lines.append("  alarms Application Auto Scaling created:")
            for m in alarms:
                lines.append(
                    f"    {m.get('AlarmName')}: {m.get('MetricName')} {m.get('Statistic')} "
                    f"{m.get('ComparisonOperator')} {_show(m.get('Threshold'))}, "
                    f"{m.get('DatapointsToAlarm') or m.get('EvaluationPeriods')} of "
                    f"{m.get('EvaluationPeriods')} datapoints x {m.get('Period')} s"
                )
        else:
            lines.append("  alarms Application Auto Scaling created: none reported (AWS "
                         "creates them within seconds; the AWS emulator never does)")  # fmt: skip
    return "\n".join(lines) + "\n"


# --- the reports' view: the default policy for a run ---------------------------------------


@dataclass(frozen=True)
class PolicyCommands:
    """The report's policy: the run's target value on a real-time variant."""

    endpoint: str
    variant: str
    target_value: float
    min_capacity: int
    max_capacity: int
    sized: bool  # False: min/max are placeholders, no expected traffic was given

    @property
    def resource_id(self) -> str:
        return resource_id(Kind.VARIANT, self.endpoint, self.variant, None)

    def plan(self) -> PolicyPlan:
        return build_plan(PolicyRequest(endpoint=self.endpoint, variant=self.variant,
                                        target_value=self.target_value,
                                        min_capacity=self.min_capacity,
                                        max_capacity=self.max_capacity))  # fmt: skip

    def configuration(self) -> dict[str, Any]:
        return dict(self.plan().policies[0].configuration)


def endpoint_of(target: Mapping[str, Any]) -> tuple[str, str]:
    """(endpoint name, variant) of a run's `target`: its own keys when the run recorded
    them, else the run's name and SageMaker's default variant."""
    endpoint = target.get("endpoint") or target.get("name") or "ENDPOINT_NAME"
    return str(endpoint), str(target.get("variant") or DEFAULT_VARIANT)


def policy_commands(
    a: Analysis,
    target: Mapping[str, Any] | None = None,
    sizing: Sizing | None = None,
    min_capacity_floor: int = DEFAULT_MIN_CAPACITY_FLOOR,
) -> PolicyCommands | None:
    """The policy to apply, or None when the run gives no recommendation."""
    if a.recommendation is None:
        return None
    endpoint, variant = endpoint_of(target if target is not None else a.run.get("target") or {})
    if sizing is not None:
        lo, hi = sizing.min_capacity, sizing.max_capacity
    else:
        lo, hi = default_capacity_range(a.capacity.instances, min_capacity_floor)
    return PolicyCommands(endpoint, variant, a.recommendation.target_value, lo, hi,
                          sizing is not None)  # fmt: skip


def format_policy_commands(p: PolicyCommands) -> str:
    """Shell commands that register the variant and put the policy, copy-paste ready."""
    return format_commands(p.plan().calls())


def policy_note(p: PolicyCommands) -> str:
    if p.sized:
        return "MinCapacity and MaxCapacity come from the sizing above."
    return (
        f"MinCapacity {p.min_capacity} and MaxCapacity {p.max_capacity} are placeholders "
        "(the instances tested, at least 2, and 1.5x that): pass --peak-rps (and --min-rps) "
        "to size them from your traffic."
    )
