"""The report's policy: the run's target value on a real-time variant, as `aws` commands.

The policy is planned by recommender.policy, for `recommender apply` and these reports alike,
so the report shows exactly what `apply` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recommender.analysis import Analysis
from recommender.plan import DEFAULT_VARIANT
from recommender.policy.kinds import Kind
from recommender.policy.plan import PolicyPlan, PolicyRequest, build_plan
from recommender.policy.render import format_commands
from recommender.sizing import DEFAULT_MIN_CAPACITY_FLOOR, Sizing, default_capacity_range


@dataclass(frozen=True, kw_only=True)
class PolicyCommands:
    """The report's policy: the run's target value on a real-time variant."""

    request: PolicyRequest  # endpoint, variant, target value, MinCapacity, MaxCapacity
    sized: bool  # False: min/max are placeholders, no expected traffic was given

    def plan(self) -> PolicyPlan:
        return build_plan(self.request)

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
    # An asynchronous endpoint's run: the backlog policy (ApproximateBacklogSizePerInstance).
    kind = Kind.ASYNC if a.run.get("kind") == "async" else Kind.VARIANT
    request = PolicyRequest(endpoint=endpoint, variant=variant, min_capacity=lo, max_capacity=hi,
                            target_value=a.recommendation.target_value, kind=kind)  # fmt: skip
    return PolicyCommands(request=request, sized=sizing is not None)


def format_policy_commands(p: PolicyCommands) -> str:
    """Shell commands that register the variant and put the policy, copy-paste ready."""
    return format_commands(p.plan().calls())


def policy_note(p: PolicyCommands) -> str:
    if p.sized:
        return "MinCapacity and MaxCapacity come from the sizing above."
    return (
        f"MinCapacity {p.request.min_capacity} and MaxCapacity {p.request.max_capacity} are "
        "placeholders (the instances tested, at least 2, and 1.5x that): pass --peak-rps (and "
        "--min-rps) to size them from your traffic."
    )
