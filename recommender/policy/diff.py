"""Comparing two States field by field, and the calls that restore a saved one (pure).

`diff` is what `apply` shows before it changes anything and what it checks after;
`restore_calls` is rollback, down to "there was nothing" (delete, deregister).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recommender.policy.state import (
    AlarmState,
    Call,
    PolicyState,
    State,
    put_alarm,
    put_policy,
    scope_params,
)


@dataclass(frozen=True)
class Change:
    subject: str  # "scalable target", "policy NAME", "alarm NAME"
    field: str
    before: str
    after: str


NONE = "(none)"


def show(value: Any) -> str:
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


def policy_fields(p: PolicyState | None) -> dict[str, str]:
    if p is None:
        return {}
    if p.type != "TargetTrackingScaling":
        return {"PolicyType": p.type, p.config_key: json.dumps(p.configuration, sort_keys=True)}
    c = p.configuration
    return {
        "PolicyType": p.type,
        "metric": describe_metric(c),
        "TargetValue": show(c.get("TargetValue")),
        "ScaleInCooldown": show(c.get("ScaleInCooldown")),
        "ScaleOutCooldown": show(c.get("ScaleOutCooldown")),
        "DisableScaleIn": show(bool(c.get("DisableScaleIn", False))),
    }


def alarm_fields(a: AlarmState | None) -> dict[str, str]:
    if a is None:
        return {}
    p = a.params
    rule = (f"{p.get('MetricName')} {p.get('Statistic')} {p.get('ComparisonOperator')} "
            f"{show(p.get('Threshold'))}")  # fmt: skip
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
            fields = _field_changes(f"policy {name}", policy_fields(old), policy_fields(new))
            # Equal in what we show, different underneath: say so rather than hide it.
            out += fields or [Change(f"policy {name}", "configuration", "other", "as planned")]
    alarm_names = [a.name for a in wanted.alarms]
    if exact:
        alarm_names += [a.name for a in current.alarms if a.name not in alarm_names]
    for name in alarm_names:
        olda, newa = current.alarm(name), wanted.alarm(name)
        if olda is None or newa is None or not olda.same_as(newa):
            out += _field_changes(f"alarm {name}", alarm_fields(olda), alarm_fields(newa)) or [
                Change(f"alarm {name}", "configuration", "other", "as planned")]  # fmt: skip
    return out


def restore_calls(current: State, saved: State) -> tuple[Call, ...]:
    """The calls that turn `current` back into `saved`, within saved's scope.

    Policies and alarms that were not there go first (a target is deregistered only once
    its policies are gone); then the target, then the policies, then the alarms wired to
    them, each only where it differs.
    """
    scope = saved.scope
    common = scope_params(scope.resource_id, scope.dimension)
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
                calls.append(put_policy(scope.resource_id, scope.dimension, p))
                put.add(p.name)
    arns = {p.name: p.arn for p in current.policies if p.arn}
    for a in saved.alarms:
        now_a = current.alarm(a.name)
        if now_a is None or not now_a.same_as(a) or a.policy in put:
            calls.append(put_alarm(a, arns, put))
    return tuple(calls)
