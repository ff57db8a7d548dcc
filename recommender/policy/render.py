"""Plans, changes and states as text, and calls as `aws` CLI shell commands (text only).

`format_commands` is the one place that renders the calls as `aws application-autoscaling
...` commands, for `--dry-run` and the reports alike: the report shows exactly what `apply` does.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from recommender.policy.diff import Change, alarm_fields, describe_metric, policy_fields, show
from recommender.policy.kinds import Kind
from recommender.policy.plan import PolicyPlan
from recommender.policy.state import Call, State
from recommender.runs import STEP_POLICY_FILE, TARGET_TRACKING_POLICY_FILE


def kebab(name: str) -> str:
    """An API name as the AWS CLI spells it: RegisterScalableTarget -> register-scalable-target."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


_FILE_NAMES = {
    "TargetTrackingScalingPolicyConfiguration": TARGET_TRACKING_POLICY_FILE,
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
                         f"{show(c['TargetValue'])}, cooldowns in {c['ScaleInCooldown']} s / "
                         f"out {c['ScaleOutCooldown']} s"
                         + (", scale-in disabled" if c.get("DisableScaleIn") else ""))  # fmt: skip
        else:
            lines.append(f"  {p.name}: {p.type}, one more instance while the alarm is on")
    for a in plan.alarms:
        f = alarm_fields(a)
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
        f = policy_fields(p)
        if p.type == "TargetTrackingScaling":
            lines.append(f"  policy {p.name}: {p.type} on {f['metric']}, TargetValue "
                         f"{f['TargetValue']}, ScaleInCooldown {f['ScaleInCooldown']}, "
                         f"ScaleOutCooldown {f['ScaleOutCooldown']}, DisableScaleIn "
                         f"{f['DisableScaleIn']}")  # fmt: skip
        else:
            lines.append(f"  policy {p.name}: {p.type} {f[p.config_key]}")
    for a in state.alarms:
        f = alarm_fields(a)
        lines.append(f"  alarm {a.name}: {f['rule']}, {f['datapoints']} -> {f['action']}")
    if state.policies and alarms is not None:
        if alarms:
            lines.append("  alarms Application Auto Scaling created:")
            for m in alarms:
                lines.append(
                    f"    {m.get('AlarmName')}: {m.get('MetricName')} {m.get('Statistic')} "
                    f"{m.get('ComparisonOperator')} {show(m.get('Threshold'))}, "
                    f"{m.get('DatapointsToAlarm') or m.get('EvaluationPeriods')} of "
                    f"{m.get('EvaluationPeriods')} datapoints x {m.get('Period')} s"
                )
        else:
            lines.append("  alarms Application Auto Scaling created: none reported (AWS "
                         "creates them within seconds; the AWS emulator never does)")  # fmt: skip
    return "\n".join(lines) + "\n"
