"""What limits trust in a result, each with what to do about it (pyperf format_checks style).

`check` reads the stage table and the capacity; `extrapolated`, `lost_workers` and
`search_stop` read what the estimate or the run directory says about how it was made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from recommender import runs
from recommender.analysis.capacity import Capacity, measured_rps
from recommender.analysis.stages import StageStats
from recommender.plan import Slo
from recommender.runs import RunData
from recommender.runtime_errors import MODEL_ERROR, MODEL_NOT_READY
from recommender.search import DecisionCode

MIN_STAGES = 3
WIDE_BRACKET = 0.20  # capacity bracket wider than this share of the estimate
HOT_CPU = 90.0
REFUSED = "ConnectionRefusedError"  # recorder.error_kind of a connection nobody accepted
MIN_TAIL_SAMPLES = 10  # requests beyond the SLO percentile needed to trust it


@dataclass(frozen=True)
class Finding:
    """One problem with a result: a stable code, and a message saying what to do."""

    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(
    stages: Sequence[StageStats], capacity: Capacity, slo: Slo, status: str, planned: int
) -> list[Finding]:
    out: list[Finding] = []

    def add(code: str, message: str) -> None:
        out.append(Finding(code, message))

    if status != "complete":
        add(
            "incomplete_run",
            f"The run is {status}: {len(stages)} of {planned} stages were measured; the "
            "estimate uses those. Re-run the full plan for a complete result.",
        )
    if not stages:
        add("no_data", f"No stage has measured seconds. Check the endpoint and {runs.LOCUST_LOG}.")
        return out
    if capacity.method == "none":
        s = stages[0]
        add(
            "first_stage_failed",
            f"The first stage ({s.offered_rps:g} rps offered) already failed the SLO "
            f"({slo}). Lower --start-rps or relax --slo.",
        )
    elif capacity.method == "lower_bound":
        add(
            "no_failing_stage",
            f"No stage failed the SLO, so {capacity.rps:.1f} rps is only a lower bound on "
            "capacity. Raise --max-rps above it to find the limit.",
        )
    elif capacity.interval_rps_per_instance and capacity.rps_per_instance:
        lo, hi = capacity.interval_rps_per_instance
        if (hi - lo) / capacity.rps_per_instance > WIDE_BRACKET:
            add(
                "wide_bracket",
                f"Capacity lies between {lo:.1f} and {hi:.1f} rps per instance "
                f"({(hi - lo) / capacity.rps_per_instance:.0%} wide). Re-run with stages "
                f"between them (--start-rps {lo * capacity.instances:.0f} --max-rps "
                f"{hi * capacity.instances:.0f}) for a tighter estimate.",
            )
    if len(stages) < MIN_STAGES:
        add(
            "too_few_stages",
            f"Only {len(stages)} stage(s) measured. Use at least {MIN_STAGES} (--stages).",
        )
    for s in stages:
        if s.generator_limited:
            add(
                "generator_limited",
                f"Stage {s.index + 1}: achieved {s.achieved_rps:.1f} of {s.offered_rps:g} rps "
                "offered while within the SLO: the load generator could not drive the rate, "
                "so the stage says nothing about the endpoint. Add --workers (or raise "
                "--users).",
            )
        if s.cpu_percent_max is not None and s.cpu_percent_max > HOT_CPU:
            add(
                "generator_cpu",
                f"Stage {s.index + 1}: the load generator used {s.cpu_percent_max:.0f}% CPU; "
                "its timings may be inflated. Lower the rate per generator process.",
            )
        latency_ok = all(
            v is not None and v <= t.limit_ms
            for t, v in zip(slo.terms, s.slo_values_ms.values(), strict=True)
        )
        # Errors whose cause is known (throttling, a dead endpoint, ...) are reported by
        # analysis.errors; only the rest can be the endpoint's knee.
        unexplained = (s.requests - s.successes - explained(s)) / s.requests if s.requests else 0
        if not s.passed and latency_ok and unexplained > slo.max_error_rate:
            kinds = ", ".join(f"{k} x{n}" for k, n in s.errors_by_kind.items())
            add(
                "errors_before_knee",
                f"Stage {s.index + 1} failed on errors ({s.error_rate:.1%}: {kinds}) while its "
                "latency was within the SLO: the endpoint errors under load before it slows "
                "down. See Invocation5XXErrors and the model's logs.",
            )
        if s.passed and s.error_rate > 0:
            kinds = ", ".join(f"{k} x{n}" for k, n in s.errors_by_kind.items())
            add(
                "errors_within_budget",
                f"Stage {s.index + 1} passed with errors ({kinds}); check the endpoint logs.",
            )
    # One warning per percentile, naming its terms and stages: a search's every stage may
    # be short of it, and TTFT and end-to-end terms at one percentile share their counts.
    by_quantile: dict[float, list[str]] = {}
    for term in slo.terms:
        q = term.quantile
        if q is not None and q < 1 and term.metric != "itl":  # ITL: a stage has many gaps
            by_quantile.setdefault(q, []).append(term.key)
    for q, keys in by_quantile.items():
        thin = [s for s in stages if s.successes * (1 - q) < MIN_TAIL_SAMPLES]
        if thin:
            which = ", ".join(str(s.index + 1) for s in thin)
            add(
                "thin_tail",
                f"Stage{'s' if len(thin) > 1 else ''} {which}: {', '.join(keys)} "
                f"rest{'s' if len(keys) == 1 else ''} on fewer than {MIN_TAIL_SAMPLES} requests "
                f"beyond the percentile ({min(s.successes for s in thin)} in the thinnest "
                f"stage; {math.ceil(MIN_TAIL_SAMPLES / (1 - q))} needed). Lengthen "
                "--stage-seconds.",
            )
    if capacity.failing_stage is not None:
        failed = next(s for s in stages if s.index == capacity.failing_stage)
        higher = [s for s in stages if s.offered_rps > failed.offered_rps and s.passed]
        if higher:
            add(
                "non_monotonic",
                f"Stage {higher[0].index + 1} passed at {higher[0].offered_rps:g} rps although "
                f"stage {failed.index + 1} failed at {failed.offered_rps:g} rps: the endpoint "
                "is noisy at this load. Lengthen the stages.",
            )
    return out


def explained(s: StageStats) -> int:
    """Errors of `s` whose cause is known and reported by analysis.errors (a model not
    ready, the model's own errors, a dead endpoint): not the endpoint's knee. (Throttling
    beyond the budget leaves the stage out before these checks; on a serverless variant it
    is the limit itself, which analysis.serverless words.)"""
    types = s.errors_by_type
    return (types.get(MODEL_NOT_READY, 0) + types.get(MODEL_ERROR, 0)
            + s.errors_by_kind.get(REFUSED, 0))  # fmt: skip


def extrapolated(capacity: Capacity, stages: Sequence[StageStats]) -> list[Finding]:
    """A capacity taken from the fitted model beyond the data (capacity.extrapolate)."""
    if capacity.method != "model_extrapolation" or capacity.rps is None:
        return []
    x, measured = capacity.rps, measured_rps(stages)
    return [Finding(
        "extrapolated",
        f"No stage failed; the fitted latency model puts the SLO limit at {x:.1f} rps, "
        f"beyond the {measured:.1f} rps measured. This is an extrapolation: confirm with "
        f"--max-rps above {x:.0f}.",
    )]  # fmt: skip


def lost_workers(run: RunData) -> list[Finding]:
    """A load-generator worker that died mid-run: its data up to then are in the run, but
    the stage it died in got less load than offered."""
    out = []
    workers = (run.meta.get("generator") or {}).get("workers") or {}
    timeline = run.plan.stage_bounds()
    for name, w in workers.items():
        lost = w.get("lost_after_second")
        if lost is None:
            continue
        stage = next((i for i, (a, b) in enumerate(timeline) if a <= lost + 1 < b), None)
        where = f"in stage {stage + 1}" if stage is not None else "after the last stage"
        out.append(Finding(
            "worker_lost",
            f"Load generator worker {name} stopped reporting after second {lost} ({where}); "
            "its requests until then are counted, but that stage and any after it were "
            "offered less than planned. Re-run, or check that worker's machine.",
        ))  # fmt: skip
    return out


BUDGET_CODES = (DecisionCode.BUDGET_DURATION.value, DecisionCode.BUDGET_REQUESTS.value)


def search_stop(run: RunData) -> list[Finding]:
    """The adaptive search stopped on its budget (--max-duration, --max-requests) before
    reaching its precision: read from the last decision's code in run.json."""
    decisions = (run.meta.get("search") or {}).get("decisions") or []
    if not decisions or decisions[-1].get("action") != "stop":
        return []
    last = decisions[-1]
    why = str(last.get("why", ""))
    if "code" in last:
        budget = last["code"] in BUDGET_CODES
    else:
        # Run directories written before decisions had a code say it only in prose.
        budget = "--max-duration" in why or "--max-requests" in why
    if budget:
        return [Finding("search_budget", f"The search stopped before reaching its precision: "
                        f"{why}. Raise --max-duration (or --max-requests).")]  # fmt: skip
    if last.get("code") == GENERATOR_LATE_CODE:
        return [Finding(GENERATOR_STOPPED, f"The search stopped: {why}. No capacity is "
                        "drawn from a run whose load generator could not keep time.")]  # fmt: skip
    return []


GENERATOR_LATE_CODE = "generator_late"  # recommender.search.DecisionCode.GENERATOR_LATE
GENERATOR_STOPPED = "generator_stopped"  # the search stopped on it: no recommendation
