"""Text renderings of an analysis: the terminal summary and the Markdown report."""

from __future__ import annotations

from recommender import __version__
from recommender.analysis import Analysis
from recommender.analysis.stages import StageStats


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _verdict(a: Analysis) -> list[str]:
    cap, rec = a.capacity, a.recommendation
    if rec is None or cap.rps_per_instance is None:
        return ["No recommendation: no stage passed the SLO."]
    lines = [
        f"Recommended target value: {rec.target_value:.0f} ({rec.metric})",
        f"  capacity: {cap.rps_per_instance:.1f} rps per instance within {a.slo} "
        f"({cap.method}; {cap.instances} instance(s), {cap.rps:.1f} rps in all)",
    ]
    if cap.interval_rps_per_instance:
        lo, hi = cap.interval_rps_per_instance
        lines.append(f"  interval: {lo:.1f} - {hi:.1f} rps per instance (bracketing stages)")
    lines.append(f"  {rec.formula}")
    return lines


def _row(s: StageStats) -> list[str]:
    return [
        str(s.index + 1),
        f"{s.offered_rps:g}",
        f"{s.achieved_rps:.1f}",
        str(s.requests),
        _ms(s.p50_ms),
        _ms(s.p95_ms),
        _ms(s.p99_ms),
        f"{s.error_rate:.2%}",
        "pass" if s.passed else "FAIL",
    ]


HEADER = ["stage", "offered rps", "achieved rps", "requests", "p50 ms", "p95 ms", "p99 ms",
          "errors", "SLO"]  # fmt: skip


def format_summary(a: Analysis) -> str:
    """Plain text for the terminal."""
    rows = [HEADER] + [_row(s) for s in a.stages]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    table = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    parts = _verdict(a) + [""] + table
    if a.warnings:
        parts += [""] + [f"warning: {w.message}" for w in a.warnings]
    return "\n".join(parts) + "\n"


def format_markdown(a: Analysis) -> str:
    """The report for a pull request or a sign-off: verdict, stage table, warnings, facts."""
    run = a.run
    target = run.get("target") or {}
    out = [f"# Sizing report: {run.get('name')}", ""]
    out += ["## Verdict", ""] + [line.strip() if i else f"**{line}**"
                                 for i, line in enumerate(_verdict(a))]  # fmt: skip
    out += ["", "## Stages", ""]
    out.append("| " + " | ".join(HEADER) + " |")
    out.append("|" + "---:|" * len(HEADER))
    out += ["| " + " | ".join(_row(s)) + " |" for s in a.stages]
    out += [
        "",
        "Latency is measured from each request's intended send time (corrected for "
        "coordinated omission); each stage's warm-up seconds are left out.",
    ]
    if a.warnings:
        out += ["", "## Warnings", ""] + [f"- {w.message}" for w in a.warnings]
    totals = run.get("totals") or {}
    out += [
        "",
        "## The test",
        "",
        f"- Target: `{target.get('url')}` ({target.get('instances')} instance(s))",
        f"- SLO: {a.slo}",
        f"- Run: {run.get('status')}, {run.get('started_at')} to {run.get('ended_at')}",
        f"- Requests: {totals.get('requests', 0)} sent, {totals.get('successes', 0)} "
        f"succeeded, {totals.get('errors', 0)} failed",
        f"- Tool: recommender {__version__}",
        "",
    ]
    return "\n".join(out)
