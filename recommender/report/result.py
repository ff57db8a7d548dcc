"""`run --json` and `analyze --json`: the result as one JSON document a pipeline can act on
without parsing prose. Its schema is `result.schema.json` beside this module (package data);
`schema` names the version, and a change that removes or renames a field bumps it."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from recommender.analysis import Analysis
from recommender.search import generator_late, late_limit_ms, short_of_level

SCHEMA = "recommender-result/1"


def result_document(
    command: str,
    analysis: Analysis,
    run_dir: Path,
    *,
    exit_code: int,
    status: str | None = None,
    applied: str | None = None,
) -> dict[str, Any]:
    """The verdict, capacity with its interval, recommendation, warnings (with their codes)
    and the exit status, for one run directory."""
    cap, rec = analysis.capacity, analysis.recommendation
    if cap.ci_rps_per_instance:
        interval, basis = list(cap.ci_rps_per_instance), cap.ci_method
    elif cap.interval_rps_per_instance:
        interval, basis = list(cap.interval_rps_per_instance), "bracketing stages"
    else:
        interval, basis = None, None
    return {
        "schema": SCHEMA,
        "command": command,
        "run_dir": str(run_dir),
        "status": status or analysis.run.get("status"),
        "verdict": analysis.verdict,
        "exit_code": int(exit_code),
        "slo": analysis.slo.to_dict(),
        "capacity": {
            "method": cap.method,
            "rps_per_instance": cap.rps_per_instance,
            "interval_rps_per_instance": interval,
            "interval_method": basis,
            "instances": cap.instances,
            "rps": cap.rps,
            "arrivals": analysis.arrivals,
        },
        "saturation": analysis.saturation.to_dict() if analysis.saturation else None,
        "concurrency": analysis.concurrency.to_dict() if analysis.concurrency else None,
        "serverless": analysis.serverless.to_dict() if analysis.serverless else None,
        "recommendation": rec.to_dict() if rec else None,
        "warnings": [w.to_dict() for w in analysis.warnings],
        "applied": applied,
        "generator": _generator(analysis),
        **({"stream": _stream(analysis)} if any(s.stream for s in analysis.stages) else {}),
    }


def _generator(analysis: Analysis) -> dict[str, Any]:
    """The load generator's own lateness per stage (null where the run did not record it),
    and the p95 past which a stage is left out (`recommender.search.generator_late`); in a
    closed loop, the requests in flight each stage held (`recommender.search.short_of_level`)."""
    return {
        "late_limit_ms": late_limit_ms(analysis.slo),
        "stages": [{"stage": s.index + 1, "offered_rps": s.offered_rps,
                    "lag_p95_ms": s.lag_p95_ms, "lag_max_ms": s.lag_max_ms,
                    "wait_p95_ms": s.wait_p95_ms, "held_in_flight": s.held_in_flight,
                    "late": short_of_level(s.held_in_flight, s.concurrency)
                    if s.concurrency is not None
                    else generator_late(s.lag_p95_ms, analysis.slo)}
                   for s in analysis.stages],
    }  # fmt: skip


def _stream(analysis: Analysis) -> dict[str, Any]:
    """A streamed run's token measures per stage (see Analysis.stream_summary)."""
    summary = analysis.stream_summary() or {}
    return {
        "goodput_slo": summary.get("goodput_slo"),
        "output_tokens_per_s_per_instance_at_capacity":
            summary.get("output_tokens_per_s_per_instance_at_capacity"),
        "stages": [{"stage": s.index + 1, "offered_rps": s.offered_rps,
                    "achieved_rps": s.achieved_rps, "passed": s.passed,
                    **asdict(s.stream)} for s in analysis.stages if s.stream is not None],
    }  # fmt: skip


def format_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def schema(name: str = "result") -> dict[str, Any]:
    """A published JSON Schema: "result" (`run`/`analyze --json`) or "comparison"
    (`compare --json`)."""
    text = resources.files("recommender.report").joinpath(f"{name}.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data
