"""What a run's errors say beyond their count (pure): SageMaker's error types, a dead endpoint.

A stage that failed on errors is normally the endpoint's limit ("errors before the knee").
Some errors say otherwise, and the stage is then left out of the estimate (`untrusted`):

- ThrottlingException beyond the error budget: AWS refused calls over the account's
  InvokeEndpoint quota before any instance saw them. Not the endpoint's capacity: the
  estimate comes from the other stages (a lower bound when none of them failed).
- ModelNotReadyException at all: the endpoint was not ready to serve (a serverless variant
  provisioning, a multi-model endpoint loading the model); what it measured is not capacity.
- ConnectionRefusedError beyond the error budget: nothing listened any more; the endpoint
  went down (or was never up), which is reported as such with the time it started.

Not an error, but left out the same way: a stage that missed its latency limits while the
load generator itself sent late (recommender.search.generator_late: its p95 lateness past a
tenth of the tightest latency limit, which counts as latency). The miss may be the
generator's, not the endpoint's; a pass stands. In a closed loop (--control concurrency) it
is a pass that is left out, when the generator held fewer requests in flight than the level
(recommender.search.short_of_level): the endpoint was judged on less load than the stage
names. A miss stands.

ModelError (the container answered an error) stays in the estimate, since callers see those
errors, but is reported as the model failing, not the instance saturating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from recommender.analysis.capacity import Capacity
from recommender.analysis.checks import REFUSED, Finding
from recommender.analysis.stages import StageStats
from recommender.plan import Slo
from recommender.runtime_errors import MODEL_ERROR, MODEL_NOT_READY, THROTTLING
from recommender.search import LATE_HINT, SHORT_HINT, generator_late, short_of_level

THROTTLED, NOT_READY, DOWN = "throttled", "model_not_ready", "endpoint_down"
LATE = "generator_late"


def untrusted_reason(s: StageStats, slo: Slo, serverless: bool = False) -> str | None:
    """Why stage `s` says nothing about capacity (a code above), or None. On a serverless
    variant ThrottlingException is MaxConcurrency reached: its capacity, not a quota
    (analysis.serverless reads it so)."""
    if not s.requests:
        return None
    if s.errors_by_type.get(MODEL_NOT_READY, 0) > 0:
        return NOT_READY
    if s.errors_by_kind.get(REFUSED, 0) / s.requests > slo.max_error_rate:
        return DOWN
    if not serverless and s.errors_by_type.get(THROTTLING, 0) / s.requests > slo.max_error_rate:
        return THROTTLED
    # Only a miss of the latency limits: a pass stands (lateness only adds latency), and
    # lateness sends no errors.
    if s.concurrency is not None:
        return LATE if s.passed and short_of_level(s.held_in_flight, s.concurrency) else None
    if not s.passed and s.error_rate <= slo.max_error_rate and generator_late(s.lag_p95_ms, slo):
        return LATE
    return None


def mark_untrusted(
    stages: Sequence[StageStats], slo: Slo, serverless: bool = False
) -> list[StageStats]:
    return [replace(s, untrusted=untrusted_reason(s, slo, serverless)) for s in stages]


def first_refused(seconds: Sequence[dict[str, Any]]) -> int | None:
    """The first second of the run in which a connection was refused."""
    return min((int(r["second"]) for r in seconds if (r.get("errors") or {}).get(REFUSED)),
               default=None)  # fmt: skip


def findings(
    stages: Sequence[StageStats],
    capacity: Capacity,
    seconds: Sequence[dict[str, Any]],
    started_at: str | None,
) -> list[Finding]:
    """One finding per cause, naming the stages and what to do."""
    out: list[Finding] = []

    def which(reason: str) -> list[StageStats]:
        return [s for s in stages if s.untrusted == reason]

    def names(group: Sequence[StageStats]) -> str:
        label = "Stage" if len(group) == 1 else "Stages"
        return f"{label} {', '.join(str(s.index + 1) for s in group)}"

    down = which(DOWN)
    if down:
        second = first_refused(seconds)
        refused = sum(s.errors_by_kind.get(REFUSED, 0) for s in down)
        when = _clock(started_at, second)
        out.append(Finding(
            DOWN,
            f"Connection refused from {when}: is the endpoint down? {names(down)} "
            f"({refused} requests refused) measured an endpoint that did not answer, not its "
            "capacity, and are left out of the estimate. Check the endpoint, then re-run.",
        ))  # fmt: skip
    throttled = which(THROTTLED)
    if throttled:
        n = sum(s.errors_by_type.get(THROTTLING, 0) for s in throttled)
        total = sum(s.requests for s in throttled)
        out.append(Finding(
            THROTTLED,
            f"{names(throttled)}: AWS throttled {n} of {total} requests "
            f"({n / total:.0%}, ThrottlingException): that is the account's InvokeEndpoint "
            f"quota, not the endpoint's capacity, so {_outcome(capacity)}. Raise the quota "
            "(Service Quotas) or spread the load (over more time or several accounts), then "
            "re-run.",
        ))  # fmt: skip
    not_ready = which(NOT_READY)
    if not_ready:
        n = sum(s.errors_by_type.get(MODEL_NOT_READY, 0) for s in not_ready)
        out.append(Finding(
            NOT_READY,
            f"{names(not_ready)}: the endpoint answered ModelNotReadyException x{n}: it was "
            "not ready (a serverless variant provisioning, a multi-model endpoint loading the "
            "model), so those stages are not trusted and are left out of the estimate. Wait "
            "until it serves (or warm it up), then re-run.",
        ))  # fmt: skip
    def hint(text: str) -> str:
        return f"{text[0].upper()}{text[1:]}, then re-run."

    late = [s for s in which(LATE) if s.concurrency is None]
    if late:
        worst = max(s.lag_p95_ms or 0.0 for s in late)
        out.append(Finding(
            LATE,
            f"{names(late)}: the load generator fell behind (its own lateness p95 up to "
            f"{worst:.0f} ms; CPU-starved?), which counts as latency: those stages measured "
            f"the generator, not the endpoint, and {_outcome(capacity)}. {hint(LATE_HINT)}",
        ))  # fmt: skip
    short = [s for s in which(LATE) if s.concurrency is not None]
    if short:
        held = ", ".join(f"{s.held_in_flight or 0.0:.1f} of {s.concurrency:g}" for s in short)
        out.append(Finding(
            LATE,
            f"{names(short)}: the load generator held fewer requests in flight than the "
            f"level ({held}: slow to turn answers into sends; CPU-starved?): they passed on "
            f"less load than they name, so {_outcome(capacity)}. {hint(SHORT_HINT)}",
        ))  # fmt: skip
    for s in stages:
        n = s.errors_by_type.get(MODEL_ERROR, 0)
        if n and not s.passed and s.untrusted is None:
            out.append(Finding(
                "model_error",
                f"Stage {s.index + 1} failed on errors the model itself answered (ModelError "
                f"x{n}, {n / s.requests:.1%}): the container returned an error (its status is "
                "in OriginalStatusCode, its log in CloudWatch Logs): that is the model "
                "failing, not the instance saturating. Fix the model or the payload, then "
                "re-run.",
            ))  # fmt: skip
    return out


def _outcome(capacity: Capacity) -> str:
    if capacity.method == "interpolated":
        return "those stages are left out and the estimate comes from the others"
    if capacity.method == "none" or capacity.rps_per_instance is None:
        return "those stages are left out, and the others give no estimate"
    return (f"those stages are left out and {capacity.rps_per_instance:.1f} rps per instance "
            "is only a lower bound")  # fmt: skip


def _clock(started_at: str | None, second: int | None) -> str:
    """HH:MM:SS UTC of a second of the run (the run's start + the second)."""
    if started_at is None or second is None:
        return "the run's start" if second is None else f"second {second} of the run"
    try:
        t = datetime.fromisoformat(started_at) + timedelta(seconds=second)
    except ValueError:
        return f"second {second} of the run"
    return f"{t:%H:%M:%S} UTC"
