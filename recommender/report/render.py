"""Text renderings of an analysis: the terminal summary, the Markdown and the HTML report.

The pieces both reports show (verdict, stage rows, sizing rows, the test's facts and the
`aws application-autoscaling` commands) are built once here; the Markdown report lays them
out as text, the HTML report hands them to its Jinja2 template with the plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from recommender import __version__
from recommender.analysis import Analysis
from recommender.analysis.checks import GENERATOR_STOPPED
from recommender.analysis.stages import StageStats
from recommender.plan import RampPlan
from recommender.report import serverless
from recommender.report.commands import (
    endpoint_of,
    format_policy_commands,
    policy_commands,
    policy_note,
)
from recommender.sizing import DEFAULT_MIN_CAPACITY_FLOOR, Sizing


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _verdict(a: Analysis) -> list[str]:
    if a.serverless is not None:
        return serverless.verdict_lines(a.serverless, a.slo)
    cap, rec = a.capacity, a.recommendation
    down = next((w for w in a.warnings if w.code == "endpoint_down"), None)
    if down is not None:  # its first sentence: "Connection refused from ...: is it down?"
        first = down.message.split("?")[0]
        return [f"No recommendation: {first[:1].lower()}{first[1:]}?"]
    stopped = next((w for w in a.warnings if w.code == GENERATOR_STOPPED), None)
    if stopped is not None:
        return [f"No recommendation: {stopped.message[len('The search stopped: '):]}"]
    if rec is None or cap.rps_per_instance is None:
        return ["No recommendation: no stage passed the SLO."]
    # A run on an inference component measured per copy (its copies served the test).
    unit = "copy" if (a.run.get("target") or {}).get("inference_component") else "instance"
    served = "copies" if unit == "copy" else "instance(s)"
    lines = [
        f"Recommended target value: {rec.target_value:.0f} ({rec.metric})",
        f"  capacity: {cap.rps_per_instance:.1f} rps per {unit} within {a.slo} "
        f"under {a.arrivals} arrivals ({cap.method}; {cap.instances} {served}, "
        f"{cap.rps:.1f} rps in all)",
    ]
    if cap.ci_rps_per_instance:
        lo, hi = cap.ci_rps_per_instance
        lines.append(f"  95% interval: {lo:.1f} - {hi:.1f} rps per {unit} ({cap.ci_method})")
    elif cap.interval_rps_per_instance:
        lo, hi = cap.interval_rps_per_instance
        lines.append(f"  interval: {lo:.1f} - {hi:.1f} rps per {unit} (bracketing stages)")
    sat = a.saturation
    if sat is not None:
        lines.append(f"  saturation throughput (MAX_RPS): {sat.rps_per_instance:.1f} rps per "
                     f"{unit}, any arrivals, latency not judged"
                     + ("" if sat.reached else " (not reached: a lower bound)"))  # fmt: skip
    lines.append(f"  {rec.formula}")
    lines += _concurrency_lines(a)
    return lines


def _concurrency_lines(a: Analysis) -> list[str]:
    """The concurrency at the SLO and its target (closed-loop, or by Little's law)."""
    c, rec = a.concurrency, a.recommendation
    if c is None or c.per_instance is None or rec is None or rec.concurrency_metric is None:
        return []
    unit = "copy" if "PerCopy" in rec.concurrency_metric else "instance"
    how = ("measured: closed-loop stages" if c.basis == "measured"
           else "by Little's law: throughput x mean latency, the run controlled the rate")
    lines = [f"Concurrency target: {rec.concurrency_target_value:.2f} "
             f"({rec.concurrency_metric})",
             f"  concurrency: {c.per_instance:.2f} requests in flight per {unit} within the SLO "
             f"({c.method}; {how})"]  # fmt: skip
    if c.interval_per_instance:
        lo, hi = c.interval_per_instance
        lines.append(f"  interval: {lo:.2f} - {hi:.2f} in flight per {unit} (bracketing stages)")
    if c.throughput_rps_per_instance is not None:
        tokens = c.output_tokens_per_s_per_instance
        lines.append(f"  throughput there: {c.throughput_rps_per_instance:.1f} requests/s "
                     + (f"and {tokens:,.0f} output tokens/s " if tokens is not None else "")
                     + f"per {unit}")  # fmt: skip
    lines.append(f"  {rec.concurrency_formula}")
    return lines


def _header(stages: list[StageStats]) -> list[str]:
    header = HEADER
    if _lateness(stages):  # runs recorded before these were: no column
        header = [*HEADER[:-1], LATE_COLUMN, HEADER[-1]]
    if any(s.concurrency is not None for s in stages):  # closed loop: the level it held
        return ["stage", "in flight", *header[2:]]
    return header


def _lateness(stages: Sequence[StageStats]) -> bool:
    return any(s.lag_p95_ms is not None for s in stages)


def _row(s: StageStats, lateness: bool = False) -> list[str]:
    return [
        str(s.index + 1),
        _level(s),
        f"{s.achieved_rps:.1f}",
        str(s.requests),
        _ms(s.p50_ms),
        _ms(s.p95_ms),
        _ms(s.p99_ms),
        f"{s.error_rate:.2%}",
        *([_ms(s.lag_p95_ms)] if lateness else []),
        ("pass" if s.passed else "FAIL") + (f" (left out: {s.untrusted})" if s.untrusted else ""),
    ]


def _level(s: StageStats) -> str:
    """The offered rate, or the closed loop's level and what it held (Little's law)."""
    if s.concurrency is None:
        return f"{s.offered_rps:g}"
    held = "" if s.held_in_flight is None else f" (held {s.held_in_flight:.1f})"
    return f"{s.concurrency:g}{held}"


HEADER = ["stage", "offered rps", "achieved rps", "requests", "p50 ms", "p95 ms", "p99 ms",
          "errors", "SLO"]  # fmt: skip
# The generator's own lateness (p95 ms): part of the latencies beside it, the tool's doing.
LATE_COLUMN = "late ms"
LATE_NOTE = ("Late ms: the p95 of how late the load generator itself sent requests once a "
             "send was due and a user free (its own doing, counted in the latencies); a "
             "stage where it passes a tenth of the SLO's limit is left out.")
# A streamed run's second table: time to first token, inter-token latency, tokens and goodput.
STREAM_HEADER = ["stage", "offered rps", "TTFT p50", "TTFT p95", "TTFT p99", "ITL p50",
                 "ITL p95", "ITL p99", "out tok/s", "in tok/s", "goodput rps"]  # fmt: skip
STREAM_NOTE = ("TTFT from the intended send; ITL between token-bearing payload parts (ms). "
               "Output tokens counted from the stream, input tokens approximate (~4 characters "
               "a token, no tokenizer). Goodput: requests/s that met the run's SLO limits "
               "on their own (TTFT, end-to-end, and mean gap against the ITL limit).")  # fmt: skip


def _stream_header(stages: list[StageStats]) -> list[str]:
    if any(s.concurrency is not None for s in stages):  # closed loop: the level it held
        return ["stage", "in flight", *STREAM_HEADER[2:]]
    return STREAM_HEADER


def _stream_row(s: StageStats) -> list[str] | None:
    t = s.stream
    if t is None:
        return None
    level = f"{s.concurrency:g}" if s.concurrency is not None else f"{s.offered_rps:g}"
    return [str(s.index + 1), level, _ms(t.ttft_p50_ms), _ms(t.ttft_p95_ms),
            _ms(t.ttft_p99_ms), _ms(t.itl_p50_ms), _ms(t.itl_p95_ms), _ms(t.itl_p99_ms),
            f"{t.output_tokens_per_s:.0f}", f"{t.input_tokens_per_s:.0f}",
            f"{t.goodput_rps:.1f}"]  # fmt: skip


def stream_rows(stages: Sequence[StageStats]) -> list[list[str]]:
    return [row for s in stages if (row := _stream_row(s)) is not None]


def _text_table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]


def format_summary(a: Analysis) -> str:
    """Plain text for the terminal."""
    late = _lateness(a.stages)
    table = _text_table([_header(a.stages)] + [_row(s, late) for s in a.stages])
    streamed = stream_rows(a.stages)
    if streamed:
        table += [""] + _text_table([_stream_header(a.stages)] + streamed)
    parts = _verdict(a) + [""] + table
    if a.warnings:
        parts += [""] + [f"warning: {w.message}" for w in a.warnings]
    return "\n".join(parts) + "\n"


# --- sizing and the test's facts, as (label, value) rows ---------------------------------


def _usd(v: float | None) -> str:
    return "-" if v is None else f"${v:,.2f}" if v >= 1 else f"${v:.4g}"


def sizing_rows(z: Sizing) -> list[tuple[str, str]]:
    t = z.target_value
    rows = [
        ("Expected peak", f"{z.peak_rps:g} requests/s"),
        ("Instances at peak", f"{z.instances_at_peak} (ceil({z.peak_rps:g} x 60 / {t:.1f}))"),
    ]
    if z.min_rps is not None:
        rows.append(("Expected minimum", f"{z.min_rps:g} requests/s "
                     f"({z.instances_at_min_rps or 0} instance(s) at the target)"))  # fmt: skip
    rows += [
        ("MinCapacity", f"{z.min_capacity} (at least {z.min_capacity_floor}"
         + (" for availability across zones" if z.min_capacity_floor > 1 else "")
         + (", and enough for the expected minimum)" if z.min_rps is not None else ")")),
        ("MaxCapacity", f"{z.max_capacity} (instances at peak x {z.headroom:g}, rounded up)"),
    ]  # fmt: skip
    if z.price is None:
        rows.append(("Cost", f"no price known for {z.instance_type or 'this instance type'}: "
                     "pass --instance-price USD_PER_HOUR"))  # fmt: skip
    else:
        rows += [
            ("Price per instance", f"{_usd(z.price.usd_per_hour)}/hour ({z.price.source})"),
            ("Cost at MinCapacity", f"{_usd(z.cost_per_hour_min)}/hour"),
            ("Cost at peak", f"{_usd(z.cost_per_hour_peak)}/hour"),
            ("Cost per million requests", f"{_usd(z.cost_per_million_requests)} "
             f"(each instance at the target, {t / 60:.1f} requests/s)"),
        ]  # fmt: skip
    return rows


def facts(a: Analysis, meta: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """What was tested and how, from run.json (or the analysis' summary of it)."""
    meta = meta if meta is not None else a.run
    target = meta.get("target") or {}
    endpoint, variant = endpoint_of(target)
    totals = meta.get("totals") or {}
    rows = [
        ("Endpoint", f"{endpoint} (variant {variant})"),
        ("URL", str(target.get("url"))),
        ("Instances", f"{target.get('instances') or 1} x "
         f"{target.get('instance_type') or 'instance type not recorded'}"),
    ]  # fmt: skip
    if meta.get("plan"):
        plan = RampPlan.from_dict(meta["plan"])
        secs = sorted({s.seconds for s in plan.stages})
        rows.append(("Plan", f"{len(plan.stages)} stages, {plan.stages[0].rps:g} -> "
                     f"{plan.max_rps:g} requests/s offered, "
                     f"{'/'.join(f'{x:g}' for x in secs)} s each, {plan.warmup_seconds:g} s "
                     f"warm-up left out, {plan.arrivals} arrivals"))  # fmt: skip
        rows.append(("Duration", f"{plan.duration:g} s planned"))
    rows += [
        ("Run", f"{meta.get('status')}, {meta.get('started_at') or '?'} to "
         f"{meta.get('ended_at') or '?'}"),
        ("Requests", f"{totals.get('requests', 0)} sent, {totals.get('successes', 0)} "
         f"succeeded, {totals.get('errors', 0)} failed"),
        ("SLO", str(a.slo)),
    ]  # fmt: skip
    measured_by = (meta.get("tool") or {}).get("version")
    tool = f"recommender {__version__}"
    if measured_by and measured_by != __version__:
        tool += f" (measured with {measured_by})"
    rows.append(("Tool", tool))
    return rows


# --- Markdown ----------------------------------------------------------------------------


def format_markdown(
    a: Analysis,
    sizing: Sizing | None = None,
    meta: Mapping[str, Any] | None = None,
    min_capacity_floor: int = DEFAULT_MIN_CAPACITY_FLOOR,
) -> str:
    """The report for a pull request or a sign-off: verdict, sizing, stage table, warnings,
    the commands that apply the policy, and the test's facts. `meta` is run.json."""
    run = a.run
    out = [f"# Sizing report: {run.get('name')}", ""]
    out += ["## Verdict", ""] + [line.strip() if i else f"**{line}**"
                                 for i, line in enumerate(_verdict(a))]  # fmt: skip
    if sizing is not None:
        out += ["", "## Sizing", "", "| | |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in sizing_rows(sizing)]
    out += ["", "## Stages", ""]
    out.append("| " + " | ".join(_header(a.stages)) + " |")
    out.append("|" + "---:|" * len(_header(a.stages)))
    late = _lateness(a.stages)
    out += ["| " + " | ".join(_row(s, late)) + " |" for s in a.stages]
    out += [
        "",
        "Latency is measured from each request's intended send time (corrected for "
        "coordinated omission); each stage's warm-up seconds are left out."
        + (f" {LATE_NOTE}" if late else ""),
    ]
    streamed = stream_rows(a.stages)
    if streamed:
        out += ["", "## Tokens", "", "| " + " | ".join(_stream_header(a.stages)) + " |",
                "|" + "---:|" * len(STREAM_HEADER)]  # fmt: skip
        out += ["| " + " | ".join(row) + " |" for row in streamed]
        out += ["", STREAM_NOTE]
    if a.serverless is not None:
        rows = serverless.stage_rows(a.serverless)
        out += ["", "## Serverless: throttling and cold starts (whole stages)", ""]
        out.append("| " + " | ".join(rows[0]) + " |")
        out.append("|" + "---:|" * len(rows[0]))
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if a.warnings:
        out += ["", "## Warnings", ""] + [f"- {w.message}" for w in a.warnings]
    target = (meta or run).get("target") or {}
    policy = None if a.serverless else policy_commands(a, target, sizing, min_capacity_floor)
    if a.serverless is not None:
        command = serverless.apply_command(str(run.get("dir")), a.serverless.sizing)
        out += ["", "## Apply the policy", "", "```sh", command, "```"]
    if policy is not None:
        out += ["", "## Apply the policy", "", policy_note(policy), "", "```sh"]
        out += [format_policy_commands(policy).rstrip("\n"), "```"]
    out += ["", "## The test", ""] + [f"- {k}: {v}" for k, v in facts(a, meta)] + [""]
    return "\n".join(out)


# --- HTML --------------------------------------------------------------------------------


def _utc_minute(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _stage_cells(stages: Sequence[StageStats]) -> list[dict[str, Any]]:
    late = _lateness(stages)
    return [{"cells": _row(s, late), "passed": s.passed} for s in stages]


def format_html(
    a: Analysis,
    meta: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    sizing: Sizing | None = None,
    cloudwatch: Sequence[tuple[str, str]] = (),
    min_capacity_floor: int = DEFAULT_MIN_CAPACITY_FLOOR,
    simulation: Mapping[str, Any] | None = None,
) -> str:
    """One self-contained HTML page: styles inline, plots as inline SVG, no fetches.

    `meta` is run.json, `records` latency.jsonl's lines, `cloudwatch` (file name, text) of
    any CloudWatch CSVs in the run directory.
    """
    # Imported here: matplotlib costs about a second that the terminal summary need not pay.
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    from recommender.report import plots

    plan = RampPlan.from_dict(meta["plan"])
    figures = []
    if a.stages:
        figures += [
            ("Throughput and latency", "curve",
             plots.throughput_latency_svg(a.stages, a.slo, a.capacity)),
            ("Offered and achieved rate", "rates", plots.offered_achieved_svg(a.stages)),
        ]  # fmt: skip
    if any(s.stream for s in a.stages):
        figures.append(("Tokens: TTFT, ITL and throughput", "tokens",
                        plots.tokens_svg(a.stages, a.slo)))  # fmt: skip
    if records:
        tl = plots.timeline(records)
        figures.append(("Latency and errors over time", "timeline",
                        plots.timeline_svg(tl, plan, a.slo)))  # fmt: skip
    if simulation is not None:
        figures.append(("The policy on your traffic (simulated)", "simulation",
                        plots.simulation_svg(simulation)))  # fmt: skip
    cw = None
    # The SLO's own statistic on both sides when CloudWatch has it (p95 of ModelLatency is
    # there when the endpoint published values, as SageMaker does), else the Average.
    latency = [t.stat for t in a.slo.terms if t.histogram == "latency_co_us"]
    for name, text in cloudwatch[:1]:
        cw = plots.cloudwatch_comparison(name, text, records, meta.get("started_at"),
                                         prefer=latency[0] if latency else None)  # fmt: skip
    cw_svg = Markup(plots.cloudwatch_svg(cw)) if cw is not None and cw.note is None else None
    policy = (None if a.serverless else
              policy_commands(a, meta.get("target") or {}, sizing, min_capacity_floor))
    env = Environment(
        loader=PackageLoader("recommender.report", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = _ms
    env.filters["utc"] = _utc_minute
    return env.get_template("report.html").render(
        name=a.run.get("name"),
        a=a,
        verdict=_verdict(a),
        concurrency=_concurrency_lines(a),
        unit="copy" if (a.run.get("target") or {}).get("inference_component") else "instance",
        sizing=sizing_rows(sizing) if sizing else None,
        header=_header(a.stages),
        stages=_stage_cells(a.stages),
        stream_header=_stream_header(a.stages),
        stream_rows=stream_rows(a.stages),
        stream_note=STREAM_NOTE,
        figures={key: (title, Markup(svg)) for title, key, svg in figures},
        simulation=simulation,
        policy=policy,
        policy_note=policy_note(policy) if policy else None,
        commands=format_policy_commands(policy) if policy else None,
        facts=facts(a, meta),
        cloudwatch=cw,
        cloudwatch_svg=cw_svg,
        version=__version__,
    )
