"""The endpoint's own view of each stage, from its CloudWatch metrics (pure).

CloudWatch periods that lie wholly inside a stage's measured window are joined to it; the
client's successes over exactly those periods are compared with CloudWatch's Invocations,
since a gap means one side is not seeing what the other does (requests lost in between, a
wrong endpoint or variant, a generator miscounting, or data still arriving).

`judge_on_server` re-judges the stages on that view (`analyze --slo-source server`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from recommender import metrics, runs
from recommender.analysis.checks import Finding
from recommender.analysis.stages import StageStats, score
from recommender.errors import InsufficientDataError, RunDirError
from recommender.plan import Slo
from recommender.runs import RunData

COUNT_TOLERANCE = 0.02


def server_view(
    run: RunData, stages: Sequence[StageStats]
) -> tuple[dict[int, dict[str, Any]], list[Finding]]:
    """Per stage index: CloudWatch's numbers for it (and the client's over the same
    periods); plus warnings where the two counts disagree."""
    info = run.meta.get("cloudwatch") or {}
    try:
        table = metrics.read_csv(run.path / str(info.get("file", runs.CLOUDWATCH_FILE)))
    except RunDirError as exc:
        return {}, [Finding("bad_cloudwatch_file", exc.one_line())]
    if not table or not run.meta.get("started_at"):
        return {}, []
    t0 = datetime.fromisoformat(run.meta["started_at"]).timestamp()
    plan = run.plan
    bounds = plan.stage_bounds()
    windows = [(t0 + bounds[s.index][0] + plan.warmup_seconds, t0 + bounds[s.index][1])
               for s in stages]  # fmt: skip
    ok_by_epoch = {t0 + int(r["second"]): int(r["ok"]) for r in run.seconds}
    out: dict[int, dict[str, Any]] = {}
    warnings: list[Finding] = []
    for stage, view in zip(stages, metrics.join_stages(table, windows), strict=True):
        if view is None:
            continue
        client = sum(n for t, n in ok_by_epoch.items() if view.start <= t < view.end)
        row = asdict(view)
        row["client_successes"] = client
        out[stage.index] = row
        if view.invocations is not None and client:
            gap = abs(view.invocations - client) / client
            if gap > COUNT_TOLERANCE:
                warnings.append(
                    Finding(
                        "client_server_mismatch",
                        f"Stage {stage.index + 1}: CloudWatch counted {view.invocations:.0f} "
                        f"invocations, the client {client} successes ({gap:.1%} apart). "
                        "Check the endpoint and variant, or re-collect later with "
                        "`recommender collect` if the data was still arriving.",
                    )
                )
    if not out:
        warnings.append(
            Finding(
                "no_server_periods",
                f"No CloudWatch period of {info.get('period')}s fits inside a stage: "
                "lengthen --stage-seconds or collect with a shorter --cloudwatch-period.",
            )
        )
    return out, warnings


def judge_on_server(
    stages: list[StageStats], server: dict[int, dict[str, Any]], slo: Slo
) -> list[StageStats]:
    """The stages re-judged on CloudWatch's ModelLatency (stages CloudWatch did not cover
    are left out). InsufficientDataError when CloudWatch lacks a statistic the SLO needs.

    Method: each SLO term reads the stage's sample-weighted mean ModelLatency, or for a
    percentile its worst period's (an upper bound: see metrics.ServerStage); errors stay
    the client's, since users see them. The score is the client-side one (stages.score).
    """
    if not server:
        raise InsufficientDataError(
            "the run has no CloudWatch data joined to its stages",
            "collect it (`recommender collect RUN_DIR`) or use --slo-source client",
        )
    out = []
    for s in stages:
        view = server.get(s.index)
        if view is None:
            continue
        values: dict[str, float | None] = {}
        for term in slo.terms:
            if term.histogram != "latency_co_us":
                raise InsufficientDataError(
                    f"CloudWatch has no {term.key}: it sees whole invocations, not tokens",
                    "use --slo-source client for TTFT and ITL terms",
                )
            value = (view["model_latency_ms"] if term.stat == "mean"
                     else view["model_latency_pct_ms"].get(term.stat))  # fmt: skip
            if value is None:
                raise InsufficientDataError(
                    f"CloudWatch has no {term.stat} ModelLatency for stage {s.index + 1}",
                    "use a statistic it collected (mean, p50, p90, p95, p99) or "
                    "--slo-source client",
                )
            values[term.key] = value
        sc = score(values, s.error_rate, slo, s.successes)
        out.append(replace(s, slo_values_ms=values, score=sc, passed=sc <= 1.0))
    return out
