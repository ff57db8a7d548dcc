"""The endpoint's own view of each stage, from its CloudWatch metrics (pure).

CloudWatch periods that lie wholly inside a stage's measured window are joined to it; the
client's successes over exactly those periods are compared with CloudWatch's Invocations,
since a gap means one side is not seeing what the other does (requests lost in between, a
wrong endpoint or variant, a generator miscounting, or data still arriving).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from recommender import metrics
from recommender.analysis.checks import Warning
from recommender.analysis.stages import StageStats
from recommender.errors import RunDirError
from recommender.runs import RunData

COUNT_TOLERANCE = 0.02


def server_view(
    run: RunData, stages: Sequence[StageStats]
) -> tuple[dict[int, dict[str, Any]], list[Warning]]:
    """Per stage index: CloudWatch's numbers for it (and the client's over the same
    periods); plus warnings where the two counts disagree."""
    info = run.meta.get("cloudwatch") or {}
    try:
        table = metrics.read_csv(run.path / str(info.get("file", metrics.CSV_FILE)))
    except RunDirError as exc:
        return {}, [Warning("bad_cloudwatch_file", exc.one_line())]
    if not table or not run.meta.get("started_at"):
        return {}, []
    t0 = datetime.fromisoformat(run.meta["started_at"]).timestamp()
    plan = run.plan
    bounds = plan.stage_bounds()
    windows = [(t0 + bounds[s.index][0] + plan.warmup_seconds, t0 + bounds[s.index][1])
               for s in stages]  # fmt: skip
    ok_by_epoch = {t0 + int(r["second"]): int(r["ok"]) for r in run.seconds}
    out: dict[int, dict[str, Any]] = {}
    warnings: list[Warning] = []
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
                    Warning(
                        "client_server_mismatch",
                        f"Stage {stage.index + 1}: CloudWatch counted {view.invocations:.0f} "
                        f"invocations, the client {client} successes ({gap:.1%} apart). "
                        "Check the endpoint and variant, or re-collect later with "
                        "`recommender collect` if the data was still arriving.",
                    )
                )
    if not out:
        warnings.append(
            Warning(
                "no_server_periods",
                f"No CloudWatch period of {info.get('period')}s fits inside a stage: "
                "lengthen --stage-seconds or collect with a shorter --cloudwatch-period.",
            )
        )
    return out, warnings
