"""Pure analysis of a run: stage table -> capacity at the SLO -> recommendation -> checks.

This module only orchestrates; each rule lives in the module named for its job: stages
(the stage table), server (CloudWatch's view, judging on it), capacity (the estimate,
extrapolation), bootstrap (its confidence interval), fit (the latency model), recommend
(the target value), checks (what limits trust in the result) and errors (what the errors'
types say: throttling, a model not ready, a dead endpoint; such stages are left out).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from recommender import metrics, runs
from recommender.analysis.bootstrap import corroborations, with_confidence
from recommender.analysis.capacity import (
    Capacity,
    ConcurrencyAtSlo,
    capacity_at_slo,
    concurrency_at_slo,
    extrapolate,
    measured_rps,
)
from recommender.analysis.checks import (
    GENERATOR_STOPPED,
    Finding,
    check,
    extrapolated,
    lost_workers,
    search_stop,
)
from recommender.analysis.errors import DOWN, THROTTLED, mark_untrusted
from recommender.analysis.errors import findings as error_findings
from recommender.analysis.fit import LatencyFit, fit_latency
from recommender.analysis.recommend import (
    DEFAULT_SAFETY_FACTOR,
    Recommendation,
    check_safety_factor,
    recommend,
)
from recommender.analysis.server import judge_on_server, server_view
from recommender.analysis.serverless import (
    ServerlessAnalysis,
    analyze_serverless,
    throttling_findings,
)
from recommender.analysis.stages import StageStats, stage_stats
from recommender.errors import ConfigError, ExitCode, RecommenderError
from recommender.plan import STREAM_METRICS, Slo
from recommender.runs import RunData

__all__ = ["Analysis", "Saturation", "analyze_run", "saturation"]

SATURATED = 0.9  # a stage served less than this share of its offered rate: overloaded


@dataclass(frozen=True)
class Saturation:
    """The highest throughput any stage completed (AWS's MAX_RPS): what the endpoint serves
    flat out, whatever the arrivals and latency. `reached`: some stage was offered more
    than it served (so this is the ceiling, not just the most that was asked)."""

    rps: float
    rps_per_instance: float
    reached: bool

    def to_dict(self) -> dict[str, Any]:
        return {"rps": self.rps, "rps_per_instance": self.rps_per_instance,
                "reached": self.reached,
                "arrivals": "any (the throughput ceiling, latency not judged)"}  # fmt: skip


def saturation(stages: list[StageStats], instances: int) -> Saturation | None:
    measured = [s for s in stages if s.seconds]
    if not measured:
        return None
    best = measured_rps(measured)
    reached = any(s.successes / s.seconds < SATURATED * s.offered_rps
                  and not s.generator_limited for s in measured)  # fmt: skip
    return Saturation(best, best / instances, reached)


@dataclass(frozen=True)
class Analysis:
    slo: Slo
    stages: list[StageStats]
    capacity: Capacity
    recommendation: Recommendation | None
    warnings: list[Finding]
    run: dict[str, Any]
    server: dict[int, dict[str, Any]] = field(default_factory=dict)  # CloudWatch, by stage
    fits: list[LatencyFit] = field(default_factory=list)
    slo_source: str = "client"
    concurrency: ConcurrencyAtSlo | None = None
    serverless: ServerlessAnalysis | None = None  # a serverless variant's own view
    arrivals: str = "uniform"  # the arrival model the capacity assumes (the run's)
    saturation: Saturation | None = None

    @property
    def verdict(self) -> str:
        """endpoint_down (it stopped answering mid-run: whatever the stages before say,
        the run is not a sizing) | generator_late (the search stopped because the load
        generator itself sent late twice in a row: the run measured it, not the endpoint)
        | recommendation | slo_failed_at_first_stage (every stage
        failed: capacity is below the lowest rate offered) | no_recommendation."""
        if any(w.code == DOWN for w in self.warnings):
            return "endpoint_down"
        if any(w.code == GENERATOR_STOPPED for w in self.warnings):
            return "generator_late"
        if self.recommendation is not None:
            return "recommendation"
        if self.capacity.method == "none" and self.capacity.failing_stage is not None:
            return "slo_failed_at_first_stage"
        return "no_recommendation"

    @property
    def exit_code(self) -> ExitCode:
        return {"recommendation": ExitCode.OK,
                "slo_failed_at_first_stage": ExitCode.SLO_FAILED_AT_FIRST_STAGE,
                "endpoint_down": ExitCode.ENDPOINT,
                }.get(self.verdict, ExitCode.FAILED)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "run": self.run,
            "slo": self.slo.to_dict(),
            "slo_source": self.slo_source,
            "latency_basis": (
                "intended send time (coordinated-omission corrected)"
                if self.slo_source == "client"
                else "CloudWatch ModelLatency (percentiles: the stage's worst period)"
            ),
            "stages": [
                {**s.to_dict(), "server": self.server.get(s.index),
                 **({"extra": s.extra} if s.extra else {})}
                for s in self.stages
            ],
            "arrivals": self.arrivals,
            "capacity": {**self.capacity.to_dict(), "arrivals": self.arrivals},
            "saturation": self.saturation.to_dict() if self.saturation else None,
            "concurrency": self.concurrency.to_dict() if self.concurrency else None,
            "fits": [f.to_dict() for f in self.fits],
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "warnings": [w.to_dict() for w in self.warnings],
            "serverless": self.serverless.to_dict() if self.serverless else None,
            "stream": self.stream_summary(),
        }

    def stream_summary(self) -> dict[str, Any] | None:
        """For a streamed run (None otherwise): what its token numbers mean, and the output
        tokens per second at the capacity (its rate x the mean output tokens per request
        of the stages that passed)."""
        if not any(s.stream is not None for s in self.stages):
            return None
        goodput_slo = (self.run.get("slo") or {}).get("text")
        return {
            "goodput_slo": goodput_slo,
            "goodput": "requests per second that met goodput_slo's limits on their own: "
                       "TTFT and end-to-end latency from the intended send, and time per "
                       "output token (the mean of the request's gaps) within the ITL limit",
            "output_tokens": "counted from the payload parts (--token-format)",
            "input_tokens": "approximate: ~4 characters per token, no tokenizer",
            "output_tokens_per_s_per_instance_at_capacity": output_tokens_per_s(
                self.stages, self.capacity.rps_per_instance),
        }


def output_tokens_per_s(stages: list[StageStats], rps: float | None) -> float | None:
    """Output tokens per second at a throughput: `rps` x the mean output tokens per request
    of the stages that passed (None without streamed stages or a throughput)."""
    per_request = [s.stream.output_tokens_per_request for s in stages
                   if s.passed and s.stream is not None
                   and s.stream.output_tokens_per_request is not None]  # fmt: skip
    if not per_request or not rps:
        return None
    return rps * sum(per_request) / len(per_request)


def analyze_run(
    run: RunData,
    slo: Slo | None = None,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
    slo_source: str = "client",
) -> Analysis:
    """Analyse a run directory's data; `slo` overrides the one the run was made with.

    `slo_source` "server" judges the SLO's latency on the endpoint's own ModelLatency from
    CloudWatch instead of the client's latency (errors stay the client's: users see them).
    """
    check_safety_factor(safety_factor)
    slo = slo or run.slo
    if (run.meta.get("target") or {}).get("kind") == "async":
        return analyze_async(run, slo, safety_factor)
    plan = run.plan
    status = str(run.meta.get("status", "complete"))
    stages = stage_stats(run.seconds, plan, slo, partial_last=status != "complete")
    server, server_warnings = server_view(run, stages)
    if slo_source == "server":
        stages = judge_on_server(stages, server, slo)
    elif slo_source != "client":
        raise ConfigError(f"unknown --slo-source {slo_source!r}", "use client or server")
    stages = mark_untrusted(stages, slo, bool((run.meta.get("target") or {}).get("serverless")))
    # Stages throttled by AWS, answered "not ready" or refused say nothing about capacity.
    trusted = [s for s in stages if s.untrusted is None]
    capacity = capacity_at_slo(trusted, run.instances, corroborations(run, trusted))
    if slo.needs_stream and not any(s.stream for s in stages):
        term = next(t for t in slo.terms if t.metric in STREAM_METRICS)
        raise ConfigError(f"--slo {term} needs a run made with --stream",
                          "this run has no tokens to time; judge it on latency terms")  # fmt: skip
    fits = [f for t in slo.terms if (f := fit_latency(trusted, t.key, t.limit_ms)) is not None]
    if capacity.method == "interpolated":
        capacity = with_confidence(capacity, run, slo, trusted, slo_source == "client")
    elif capacity.method == "lower_bound" and len(trusted) == len(stages):
        # Not past stages left out: what the model says beyond them was never measured.
        capacity = extrapolate(capacity, fits, trusted)
    concurrency = concurrency_at_slo(trusted, capacity)
    concurrency = replace(concurrency, output_tokens_per_s_per_instance=output_tokens_per_s(
        trusted, concurrency.throughput_rps_per_instance))
    per_copy = bool((run.meta.get("target") or {}).get("inference_component"))
    rec = (recommend(capacity.rps_per_instance, safety_factor, concurrency.per_instance,
                     per_copy, concurrency.basis)
           if capacity.rps_per_instance else None)  # fmt: skip
    causes = error_findings(stages, capacity, run.seconds, run.meta.get("started_at"))
    warnings = check(trusted, capacity, slo, status, len(plan.stages))
    if any(w.code == THROTTLED for w in causes):  # it says why the bound, and what to do
        warnings = [w for w in warnings if w.code != "no_failing_stage"]
    if stages and not trusted:  # measured, all left out: the causes say why
        warnings = [w for w in warnings if w.code != "no_data"]
    warnings = causes + warnings
    warnings += extrapolated(capacity, trusted) + server_warnings
    warnings += lost_workers(run) + search_stop(run)
    if any(w.code == GENERATOR_STOPPED for w in warnings):
        rec = None  # the search never found the endpoint's limit: the generator's came first
    serverless = None
    config = (run.meta.get("target") or {}).get("serverless")
    if config:
        started = run.meta.get("started_at")
        t0 = datetime.fromisoformat(started).timestamp() if started else None
        serverless = analyze_serverless(config, run.seconds, plan, stages, capacity, slo,
                                        _cloudwatch_rows(run), t0)  # fmt: skip
        warnings = throttling_findings(stages, warnings, serverless.max_concurrency)
        warnings += serverless.findings
    summary = {
        "dir": str(run.path),
        "name": run.meta.get("name"),
        "status": status,
        "target": run.meta.get("target"),
        "started_at": run.meta.get("started_at"),
        "ended_at": run.meta.get("ended_at"),
        "totals": run.meta.get("totals"),
        "slo": run.meta.get("slo"),
        "payload": run.meta.get("payload"),
    }
    return Analysis(slo, stages, capacity, rec, warnings, summary, server, fits, slo_source,
                    concurrency, serverless,
                    arrivals="closed_loop" if plan.control == "concurrency" else plan.arrivals,
                    saturation=saturation(stages, run.instances))  # fmt: skip


def _cloudwatch_rows(run: RunData) -> list[dict[str, Any]]:
    """cloudwatch.csv's rows; [] when it is missing or unreadable (server_view warns)."""
    info = run.meta.get("cloudwatch") or {}
    try:
        return metrics.read_csv(run.path / str(info.get("file", runs.CLOUDWATCH_FILE)))
    except RecommenderError:
        return []


def analyze_async(run: RunData, slo: Slo, safety_factor: float) -> Analysis:
    """An asynchronous endpoint's run (recommender.analysis.asynchronous): stages judged on
    completion latency and backlog growth, the target for ApproximateBacklogSizePerInstance."""
    from recommender.analysis import asynchronous as a

    status = str(run.meta.get("status", "complete"))
    stages = a.async_stages(run, slo, status)
    capacity = a.async_capacity(stages, run.instances)
    slots = a.slots_per_instance(run)
    rec = a.recommend_backlog(capacity, stages, slo, slots, safety_factor)
    warnings = check(stages, capacity, slo, status, len(run.plan.stages))
    warnings = [w for w in warnings if w.code not in ("no_failing_stage", "generator_limited")]
    warnings += a.async_findings(stages, capacity, rec, run, slo)
    summary = {
        "dir": str(run.path),
        "name": run.meta.get("name"),
        "status": status,
        "target": run.meta.get("target"),
        "started_at": run.meta.get("started_at"),
        "ended_at": run.meta.get("ended_at"),
        "totals": run.meta.get("totals"),
        "kind": "async",
        "async": {**(run.meta.get("async") or {}), "slots_per_instance_used": slots},
    }
    return Analysis(slo, stages, capacity, rec, warnings, summary, a.cloudwatch_view(run, stages))
