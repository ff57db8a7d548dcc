"""Collect a run's CloudWatch metrics into its run directory.

Datapoints arrive late (about two minutes on AWS), so collection waits, bounded, for the
window's last period to show up. Every datapoint of the window goes into cloudwatch.csv;
run.json records the period, the file and any statistic that was refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from recommender import metrics, runs
from recommender.aws import AwsClient, aligned
from recommender.cloudwatch import Datapoint
from recommender.errors import AwsError, ConfigError

DEFAULT_WAIT_AWS = 300.0  # seconds; CloudWatch's usual delay is about 2 minutes


@dataclass(frozen=True)
class CollectResult:
    path: Path
    rows: int
    period: int
    warnings: tuple[str, ...]


def collect_run(
    run_dir: Path,
    aws: AwsClient,
    period: int | None = None,
    wait_seconds: float | None = None,
    echo: Callable[[str], None] = print,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> CollectResult:
    run = runs.load_run(run_dir)
    target = run.meta["target"]
    endpoint, variant = target.get("endpoint"), target.get("variant")
    if not endpoint or not variant:
        raise ConfigError(
            f"{run_dir} is not a run against a SageMaker endpoint",
            "collect needs a run made with --endpoint",
        )
    if not run.meta.get("started_at") or not run.meta.get("ended_at"):
        raise ConfigError(f"{run_dir} has no test window yet", "wait for the run to finish")
    start = datetime.fromisoformat(run.meta["started_at"]).timestamp()
    end = datetime.fromisoformat(run.meta["ended_at"]).timestamp()
    period = (
        period
        or int(run.meta.get("cloudwatch", {}).get("period") or 0)
        or (metrics.default_period(min(s.seconds for s in run.plan.stages)))
    )
    q_start, q_end = aligned(start, period), aligned(end, period, up=True)
    serverless = bool(target.get("serverless"))
    plain, percentiles = metrics.queries(endpoint, variant, period,
                                         target.get("inference_component"),
                                         serverless)  # fmt: skip
    arrival = "Invocations"
    if target.get("kind") == "async":  # other metrics; no percentiles asked
        plain, percentiles, arrival = metrics.async_queries(endpoint, variant, period), [], (
            "InvocationsProcessed")
    if wait_seconds is None:
        wait_seconds = DEFAULT_WAIT_AWS if period >= 60 else max(10.0, 3.0 * period)

    # Wait until the last period that served requests has its Invocations datapoint, or
    # time is up. That period is the one of the client's last answer, not the window's
    # last: a run ends after its last answers (a closed loop drains, Locust stops), and a
    # period without calls never gets a datapoint, so waiting for it would spend the whole
    # wait in vain. (When the endpoint counted the last call in the second before the one
    # the client got it in, the wait runs out as before; the data is complete either way.)
    invocations = [q for q in plain if q.metric == arrival]
    answered = [r["second"] for r in run.seconds if r.get("requests")]
    last_period = min(q_end.timestamp() - period,
                      aligned(start + max(answered, default=end - start), period).timestamp())

    def arrived(points: list[Datapoint]) -> bool:
        """The window's last period has its Invocations datapoint."""
        return any(p.timestamp.timestamp() >= last_period for p in points
                   if p.query in invocations)  # fmt: skip

    deadline = clock() + wait_seconds
    while True:
        if arrived(aws.get_metric_data(invocations, q_start, q_end)) or clock() >= deadline:
            break
        echo(f"  waiting for CloudWatch datapoints ({deadline - clock():.0f}s left)...")
        sleep(min(max(1.0, period / 2), 15.0, max(0.0, deadline - clock())))

    warnings: list[str] = []
    points = aws.get_metric_data(plain, q_start, q_end)
    if not arrived(points):
        warnings.append(
            "CloudWatch had not delivered the last period's datapoints yet: run "
            f"`recommender collect {run_dir}` again in a few minutes"
        )
    try:
        if percentiles:
            points += aws.get_metric_data(percentiles, q_start, q_end, best_effort=True)
    except AwsError as exc:
        warnings.append(f"percentile statistics were refused ({exc.message}); collected the rest")
    table = metrics.rows(points)
    path = run_dir / runs.CLOUDWATCH_FILE
    path.write_text(metrics.to_csv(table), encoding="utf-8")
    run.meta["cloudwatch"] = {
        "file": runs.CLOUDWATCH_FILE,
        "period": period,
        "start": q_start.isoformat(),
        "end": q_end.isoformat(),
        "rows": len(table),
        "collected_at": runs.iso(clock()),
        "warnings": warnings,
    }
    runs.write_json(run_dir / runs.RUN_FILE, run.meta)
    return CollectResult(path, len(table), period, tuple(warnings))
