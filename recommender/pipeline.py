"""The commands' library side: measure, then analyse, then write the reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recommender import runs
from recommender.analysis import Analysis, analyze_run
from recommender.loadgen.runner import LoadTestResult, LoadTestSpec, run_loadtest
from recommender.plan import Slo
from recommender.report.render import format_markdown

REPORT_MD = "report.md"


@dataclass(frozen=True)
class PipelineResult:
    loadtest: LoadTestResult
    analysis: Analysis


def analyze_dir(run_dir: Path, slo: Slo | None, safety_factor: float) -> Analysis:
    """Analyse a run directory and write analysis.json (and report.md) into it."""
    analysis = analyze_run(runs.load_run(run_dir), slo, safety_factor)
    runs.write_json(run_dir / runs.ANALYSIS_FILE, analysis.to_dict())
    (run_dir / REPORT_MD).write_text(format_markdown(analysis), encoding="utf-8")
    return analysis


def run_pipeline(
    spec: LoadTestSpec, safety_factor: float, echo: Callable[[str], None] = print
) -> PipelineResult:
    result = run_loadtest(spec, echo)
    return PipelineResult(result, analyze_dir(result.run_dir, spec.slo, safety_factor))
