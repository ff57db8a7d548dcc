"""The autoscaling policy as data: the Application Auto Scaling calls that apply it (pure).

Plan, then execute (as chalice's planner/executor). One job a module:

    kinds     Kind, Metric and their AWS names (dimensions, resource ids, metric types)
    tracking  TargetTracking: one target-tracking policy as described, checked once
    state     Call, Scope and State: the calls, and what is there, read from the API
    target    the target value and trust problems from a run's analysis.json
    plan      PolicyRequest -> PolicyPlan (build_plan): AWS's rules, then the calls
    diff      Change, diff (field by field) and restore_calls (rollback)
    render    plans, changes and states as text; calls as `aws` commands

`recommender.apply` executes a plan; `recommender.report.commands` shows one in the report.
Code inside this package imports from the modules; these names are for its users.
"""

from recommender.policy.diff import Change, diff, restore_calls
from recommender.policy.kinds import POLICY_NAME, Kind, Metric
from recommender.policy.plan import PolicyPlan, PolicyRequest, build_plan
from recommender.policy.render import format_changes, format_commands, format_plan, format_state
from recommender.policy.state import Call, Scope, State
from recommender.policy.target import RunFacts
from recommender.policy.tracking import COOLDOWN_SECONDS, TargetTracking

__all__ = [
    "COOLDOWN_SECONDS",
    "POLICY_NAME",
    "Call",
    "Change",
    "Kind",
    "Metric",
    "PolicyPlan",
    "PolicyRequest",
    "RunFacts",
    "Scope",
    "State",
    "TargetTracking",
    "build_plan",
    "diff",
    "format_changes",
    "format_commands",
    "format_plan",
    "format_state",
    "restore_calls",
]
