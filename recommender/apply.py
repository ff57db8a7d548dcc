"""Apply a policy plan with Application Auto Scaling, verify it, and roll it back.

The executor half of plan-then-execute: `recommender.policy` decides (pure); this module
reads what is there, saves it, runs the plan's calls through `recommender.aws`, reads the
result back, and undoes it on request or when a call fails half-way.

The saved states (`autoscaling_state.json` in the run directory, or `--state-file`) are a
stack: each apply that changes something pushes the state it found, each rollback pops
one and restores it, so two applies need two rollbacks to get back to the start.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from recommender import runs
from recommender.aws import AwsClient
from recommender.errors import AwsError, ConfigError, EndpointError, RunDirError
from recommender.options import AwsAccess
from recommender.policy.diff import Change, diff, restore_calls
from recommender.policy.kinds import NAMESPACE, Kind
from recommender.policy.plan import PolicyPlan, PolicyRequest, build_plan
from recommender.policy.render import (
    command_files,
    format_changes,
    format_commands,
    format_plan,
    format_state,
)
from recommender.policy.state import Call, Scope, State, state_from_api
from recommender.policy.target import RunFacts

STATE_SCHEMA_VERSION = 1


def load_run_facts(run_dir: Path) -> RunFacts:
    """run.json's target and analysis.json, which `apply` needs from a run directory."""
    run = runs.load_run(run_dir)
    path = run_dir / runs.ANALYSIS_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {runs.ANALYSIS_FILE}",
                          f"run `recommender analyze {run_dir}` first")  # fmt: skip
    try:
        analysis = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc.msg}",
                          f"re-run `recommender analyze {run_dir}`") from exc  # fmt: skip
    return RunFacts(str(run_dir), run.meta.get("target") or {}, analysis)


# --- reading what is there -----------------------------------------------------------------


def read_state(aws: AwsClient, scope: Scope) -> State:
    targets = aws.describe_scalable_targets(NAMESPACE, scope.resource_id, scope.dimension)
    policies = aws.describe_scaling_policies(NAMESPACE, scope.resource_id, scope.dimension)
    alarms = aws.describe_alarms(scope.alarm_names) if scope.alarm_names else []
    return state_from_api(scope, targets, policies, alarms)


def check_subject(aws: AwsClient, plan: PolicyPlan) -> str:
    """Check that what the plan scales exists, is InService and is of the plan's kind."""
    if plan.kind is Kind.INFERENCE_COMPONENT:
        assert plan.inference_component is not None
        ic = aws.describe_inference_component(plan.inference_component)
        if ic.status != "InService":
            raise EndpointError(f"inference component {ic.name} is {ic.status}, not InService",
                                "wait until it is InService")  # fmt: skip
        if plan.endpoint and ic.endpoint != plan.endpoint:
            raise ConfigError(f"inference component {ic.name} is on endpoint {ic.endpoint}, "
                              f"not {plan.endpoint}", "check --inference-component")  # fmt: skip
        return (f"Inference component {ic.name}: InService on endpoint {ic.endpoint}, "
                f"{ic.copies if ic.copies is not None else '?'} copies")  # fmt: skip
    assert plan.endpoint is not None
    info = aws.describe_endpoint(plan.endpoint)
    if info.status != "InService":
        raise EndpointError(
            f"endpoint {info.name} is {info.status}, not InService",
            "wait until it is InService (aws sagemaker wait endpoint-in-service)",
        )
    v = info.variant(plan.variant)
    facts = aws.describe_endpoint_config_facts(info.config_name)
    serverless = facts.serverless.get(v.name)
    e = info.name
    if plan.kind is Kind.ASYNC and not facts.async_inference:
        raise ConfigError(f"endpoint {e} is not asynchronous", "use --kind variant")
    if plan.kind is not Kind.ASYNC and facts.async_inference:
        raise ConfigError(f"endpoint {e} is asynchronous", "use --kind async")
    if plan.kind is Kind.SERVERLESS and serverless is None:
        raise ConfigError(f"variant {v.name} of {e} is not serverless", "use --kind variant")
    if plan.kind is not Kind.SERVERLESS and serverless is not None:
        raise ConfigError(f"variant {v.name} of {e} is serverless", "use --kind serverless")
    if serverless is not None:
        most = serverless.get("MaxConcurrency")
        if most is not None and plan.max_capacity > int(most):
            raise ConfigError(
                f"--max-capacity {plan.max_capacity} is above variant {v.name}'s "
                f"MaxConcurrency ({most})", "provisioned concurrency cannot exceed it",
            )  # fmt: skip
        return f"Endpoint {e}: InService, serverless variant {v.name} ({dict(serverless)})"
    count = v.current_instance_count
    return (f"Endpoint {e}: InService, {'asynchronous ' if facts.async_inference else ''}"
            f"variant {v.name}, {count if count is not None else '?'} x "
            f"{v.instance_type or 'unknown type'}")  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """A plan checked against what is there: ready to show, and to apply."""

    plan: PolicyPlan
    subject: str
    current: State
    changes: tuple[Change, ...]
    others: tuple[str, ...]  # policies on the target that the plan leaves as they are


def prepare_apply(aws: AwsClient, plan: PolicyPlan) -> Prepared:
    subject = check_subject(aws, plan)
    current = read_state(aws, plan.scope)
    mine = {p.name for p in plan.policies}
    others = tuple(p.name for p in current.policies if p.name not in mine)
    return Prepared(plan, subject, current, tuple(diff(current, plan.desired())), others)


# --- executing -----------------------------------------------------------------------------


def execute(aws: AwsClient, calls: Sequence[Call], done: list[Call] | None = None) -> None:
    """Make the calls in order. `done` collects the ones that succeeded, so a caller can tell
    whether a failure left anything changed."""
    arns: dict[str, str] = {}
    for call in calls:
        params = dict(call.params)
        if call.actions_from:
            params["AlarmActions"] = [arns[call.actions_from]]
        op = call.operation
        if op == "RegisterScalableTarget":
            aws.register_scalable_target(params)
        elif op == "PutScalingPolicy":
            arns[str(params["PolicyName"])] = aws.put_scaling_policy(params)
        elif op == "DeleteScalingPolicy":
            aws.delete_scaling_policy(params)
        elif op == "DeregisterScalableTarget":
            aws.deregister_scalable_target(params)
        elif op == "PutMetricAlarm":
            aws.put_metric_alarm(params)
        elif op == "DeleteAlarms":
            aws.delete_alarms(params["AlarmNames"])
        else:  # a planner bug, not a user error
            raise ValueError(f"no executor for {call.service} {op}")
        if done is not None:
            done.append(call)


@dataclass(frozen=True)
class Applied:
    state: State  # read back after the change
    alarms: list[dict[str, Any]]  # the CloudWatch alarms Application Auto Scaling made
    state_file: Path


def apply_prepared(aws: AwsClient, prepared: Prepared, state_file: Path,
                   rollback_hint: str) -> Applied:  # fmt: skip
    """Save what is there, run the plan, read it back. On a failure half-way, put back
    what was there (and say so in the error)."""
    plan = prepared.plan
    push_state(state_file, prepared.current, aws.region, plan)
    done: list[Call] = []
    try:
        execute(aws, plan.calls(), done)
    except AwsError as exc:
        if not done:
            pop_state(state_file)
            raise AwsError(f"{exc.message}; nothing was changed", exc.hint) from exc
        try:
            undo = restore_calls(read_state(aws, plan.scope), prepared.current)
            execute(aws, undo)
        except AwsError as again:
            raise AwsError(
                f"{exc.message}; restoring the previous state failed too: {again.message}",
                f"the previous state is saved in {state_file}: {rollback_hint}",
            ) from exc
        pop_state(state_file)
        what = ", ".join(c.label() for c in undo) or "nothing to undo"
        raise AwsError(f"{exc.message}; the previous state was restored ({what})",
                       exc.hint) from exc  # fmt: skip
    state = read_state(aws, plan.scope)
    left = diff(state, plan.desired())
    if left:
        c = left[0]
        raise AwsError(
            f"the policy read back differs from the plan: {c.subject} {c.field} is "
            f"{c.before}, planned {c.after}",
            f"the previous state is saved in {state_file}: {rollback_hint}",
        )
    made = [name for p in state.policies for name in p.alarms]
    return Applied(state, aws.describe_alarms(made) if made else [], state_file)


def write_policy_files(plan: PolicyPlan, directory: Path) -> list[Path]:
    """The JSON files the plan's commands take via file:// (the dry run's output)."""
    written = []
    for name, content in command_files(plan.calls()).items():
        path = directory / name
        runs.write_json(path, content)
        written.append(path)
    return written


# --- the saved states ----------------------------------------------------------------------


def _read_states(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc.msg}") from exc
    if data.get("schema_version") != STATE_SCHEMA_VERSION:
        raise RunDirError(f"{path} has schema_version {data.get('schema_version')!r}; this "
                          f"tool reads {STATE_SCHEMA_VERSION}")  # fmt: skip
    return list(data.get("saved") or [])


def _write_states(path: Path, saved: list[dict[str, Any]]) -> None:
    if not saved:
        path.unlink(missing_ok=True)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        runs.write_json(path, {"schema_version": STATE_SCHEMA_VERSION, "saved": saved})
    except OSError as exc:
        raise RunDirError(f"cannot write {path}: {exc.strerror}",
                          "pass a writable --state-file") from exc  # fmt: skip


def push_state(path: Path, state: State, region: str, plan: PolicyPlan) -> None:
    saved = _read_states(path)
    saved.append({
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "region": region,
        "kind": plan.kind.value,
        "applied": {"policies": [p.name for p in plan.policies],
                    "target_value": plan.target_value,
                    "min_capacity": plan.min_capacity, "max_capacity": plan.max_capacity},
        "state": state.to_dict(),
    })  # fmt: skip
    _write_states(path, saved)


def pop_state(path: Path) -> None:
    _write_states(path, _read_states(path)[:-1])


def last_saved(path: Path) -> tuple[Mapping[str, Any], int]:
    """The latest saved state's entry, and how many are saved in all."""
    saved = _read_states(path)
    if not saved:
        raise RunDirError(
            f"no saved autoscaling state in {path}",
            "nothing was applied from here, or it was rolled back already",
        )
    return saved[-1], len(saved)


@dataclass(frozen=True)
class PreparedRollback:
    state_file: Path
    saved_at: str
    saved: State
    current: State
    calls: tuple[Call, ...]
    changes: tuple[Change, ...]
    remaining: int  # saved states left after this one


def prepare_rollback(aws: AwsClient, state_file: Path) -> PreparedRollback:
    entry, count = last_saved(state_file)
    saved = State.from_dict(entry["state"])
    current = read_state(aws, saved.scope)
    return PreparedRollback(state_file, str(entry.get("saved_at")), saved, current,
                            restore_calls(current, saved),
                            tuple(diff(current, saved, exact=True)), count - 1)  # fmt: skip


def rollback_prepared(aws: AwsClient, prepared: PreparedRollback) -> State:
    """Restore the saved state, check it, and drop it from the file."""
    execute(aws, prepared.calls)
    state = read_state(aws, prepared.saved.scope)
    left = diff(state, prepared.saved, exact=True)
    if left:
        c = left[0]
        raise AwsError(f"the state read back differs from the saved one: {c.subject} "
                       f"{c.field} is {c.before}, saved {c.after}",
                       f"the saved state stays in {prepared.state_file}")  # fmt: skip
    pop_state(prepared.state_file)
    return state


# --- the commands: `apply`, `rollback`, and `run --apply`'s early check ---------------------------


class Outcome(str, Enum):
    """How `apply` or `rollback` ended without an error."""

    DONE = "done"  # changed, and read back
    NO_CHANGE = "no change"  # what is there already matches
    DRY_RUN = "dry run"  # shown, nothing changed
    DECLINED = "declined"  # `confirm` said no: nothing changed


def state_path(run_dir: Path | None, state_file: Path | None) -> Path:
    """Where the saved states go: --state-file, else the run directory, else here."""
    if state_file is not None:
        return state_file
    name = runs.AUTOSCALING_STATE_FILE
    return run_dir / name if run_dir is not None else Path(name)


def check_before_run(
    *, endpoint: str | None, variant: str | None, min_capacity: int | None,
    max_capacity: int | None,
) -> None:  # fmt: skip
    """`run --apply`'s checks, before any load is sent: a bad bound must not cost a test."""
    if endpoint is None:
        raise ConfigError("--apply needs --endpoint", "a policy scales a SageMaker endpoint")
    # The bounds, checked with a stand-in target value: the real one comes from the run.
    build_plan(PolicyRequest(endpoint=endpoint, variant=variant, target_value=1.0,
                             min_capacity=min_capacity, max_capacity=max_capacity))  # fmt: skip


def apply(
    *,
    run_dir: Path | None,
    request: PolicyRequest,
    dry_run: bool = False,
    state_file: Path | None = None,
    access: AwsAccess,
    echo: Callable[[str], None],
    confirm: Callable[[str], bool],
) -> Outcome:
    """Plan, check against what is there, show, ask, save, apply, read back (`echo` shows
    each step's text; `confirm` asks before the change). --dry-run stops after showing the
    changes and writing the files the `aws` commands read."""
    if run_dir is None and request.endpoint is None and request.inference_component is None:
        raise ConfigError("nothing to apply to", "pass a run directory, or --endpoint NAME "
                          "with --target-value")  # fmt: skip
    run = load_run_facts(run_dir) if run_dir is not None else None
    plan = build_plan(request, run)
    aws = AwsClient.connect(access, run.target.get("region") if run else None)
    prepared = prepare_apply(aws, plan)
    echo(prepared.subject)
    echo(format_plan(plan).rstrip())
    for name in prepared.others:
        echo(f"note: policy {name} is on {plan.resource_id} too and stays; with several "
             "policies AWS scales out when any asks and in only when all agree")  # fmt: skip
    echo(format_changes(prepared.changes).rstrip())
    if dry_run:
        where = run_dir if run_dir is not None else Path(".")
        files = ", ".join(str(p) for p in write_policy_files(plan, where))
        echo(f"\nDry run: nothing was changed. These commands apply the plan; they read {files}."
             "\n")  # fmt: skip
        echo(format_commands(plan.calls(), str(where)).rstrip())
        return Outcome.DRY_RUN
    if not prepared.changes:
        return Outcome.NO_CHANGE
    path = state_path(run_dir, state_file)
    undo = (f"recommender rollback {shlex.quote(str(run_dir))}"
            if run_dir is not None and state_file is None
            else f"recommender rollback --state-file {shlex.quote(str(path))}")  # fmt: skip
    if not confirm("Apply these changes?"):
        return Outcome.DECLINED
    applied = apply_prepared(aws, prepared, path, f"run `{undo}`")
    echo("\nApplied. Read back:")
    echo(format_state(applied.state, applied.alarms).rstrip())
    echo(f"The state before the change is saved in {path}; undo it with `{undo}`.")
    return Outcome.DONE


def rollback(
    *,
    run_dir: Path | None,
    state_file: Path | None = None,
    dry_run: bool = False,
    access: AwsAccess,
    echo: Callable[[str], None],
    confirm: Callable[[str], bool],
) -> Outcome:
    """Restore the latest saved state (one apply per rollback), down to "there was no
    policy"; --dry-run shows the `aws` commands that would."""
    path = state_path(run_dir, state_file)
    entry, _ = last_saved(path)
    aws = AwsClient.connect(access, entry.get("region"))
    prepared = prepare_rollback(aws, path)
    echo(f"Restoring {prepared.saved.scope.resource_id} as it was at {prepared.saved_at} "
         f"(saved in {path})")  # fmt: skip
    echo(format_changes(prepared.changes, "the saved state").rstrip())
    if dry_run:
        if prepared.calls:
            echo("\nDry run: nothing was changed. These commands restore it:\n")
            echo(format_commands(prepared.calls).rstrip())
        return Outcome.DRY_RUN
    if prepared.calls and not confirm("Roll back?"):
        return Outcome.DECLINED
    state = rollback_prepared(aws, prepared)
    echo("\nRolled back. Read back:")
    echo(format_state(state).rstrip())
    if prepared.remaining:
        echo(f"{prepared.remaining} earlier saved state(s) remain in {path}: roll back again "
             "to go further back.")  # fmt: skip
    return Outcome.DONE if prepared.calls else Outcome.NO_CHANGE
