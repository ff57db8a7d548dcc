"""The report's plots: the series each one shows (pure) and the figure, as inline SVG text.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot: no global
figure state, no GUI backend) and saved as SVG, so the HTML report holds them inline and
needs no network and no image files. Each SVG gets its own hash salt, so the ids of clip
paths and markers differ between plots placed in one page, and are stable between runs.
"""

from __future__ import annotations

import bisect
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from recommender import histograms, metrics
from recommender.analysis.capacity import Capacity
from recommender.analysis.stages import StageStats
from recommender.plan import RampPlan, Slo

COLORS = {"p50": "#1b9e77", "p95": "#d95f02", "p99": "#7570b3", "mean": "#e7298a"}
OFFERED, ACHIEVED, ERRORS, SLO_COLOR = "#9ecae1", "#08519c", "#cb181d", "#555555"


def _svg(fig: Figure, name: str) -> str:
    FigureCanvasAgg(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    # Drop the XML declaration and DOCTYPE: inline SVG in HTML starts at <svg.
    return text[text.index("<svg") :]


def _figure(rows: int = 1, height: float = 4.0) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(9.0, height), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _minor_label(v: float, _: object) -> str:
    # Label 2x, 3x and 5x of each decade only; all nine crowd into each other.
    if v <= 0:
        return ""
    lead = round(v / 10 ** math.floor(math.log10(v)))
    return f"{v:g}" if lead in (2, 3, 5) else ""


def _log_if_wide(ax: Axes, values: Iterable[float]) -> None:
    # Past saturation latency grows by orders of magnitude; a linear axis would flatten
    # everything below the knee, which is the part the SLO is about.
    vals = [v for v in values if v > 0]
    if vals and max(vals) / min(vals) > 20:
        ax.set_yscale("log")
        # Plain numbers (20, 50, 300), not powers of ten: readers compare them to the SLO.
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))


# --- throughput-latency curve ------------------------------------------------------------


def throughput_latency_svg(stages: Sequence[StageStats], slo: Slo, capacity: Capacity) -> str:
    """Latency percentiles of each stage against its achieved throughput, the SLO limits,
    and the capacity point with its interval."""
    fig, (ax,) = _figure()
    seen: list[float] = []
    # By offered rate, not play order: the adaptive search comes back down after a failure.
    stages = sorted(stages, key=lambda s: s.offered_rps)
    for stat in ("p50", "p95", "p99"):
        pts = [(s, getattr(s, f"{stat}_ms")) for s in stages]
        pts = [(s, y) for s, y in pts if y is not None]
        if not pts:
            continue
        seen += [y for _, y in pts]
        ax.plot([s.achieved_rps for s, _ in pts], [y for _, y in pts], "-", color=COLORS[stat],
                label=stat)  # fmt: skip
        for s, y in pts:
            ax.plot(
                [s.achieved_rps], [y], "o", color=COLORS[stat],
                markerfacecolor=COLORS[stat] if s.passed else "white",
            )  # fmt: skip
    for term in slo.terms:
        seen.append(term.limit_ms)
        ax.axhline(term.limit_ms, color=COLORS.get(term.stat, SLO_COLOR), linestyle="--",
                   linewidth=1)  # fmt: skip
        ax.annotate(
            f"SLO {term}", (0, term.limit_ms), xycoords=("axes fraction", "data"),
            xytext=(4, 3), textcoords="offset points", fontsize=8, color=SLO_COLOR,
        )  # fmt: skip
    n = capacity.instances
    if capacity.interval_rps_per_instance:
        lo, hi = capacity.interval_rps_per_instance
        ax.axvspan(lo * n, hi * n, color="#fdd0a2", alpha=0.5, label="capacity interval")
    if capacity.rps is not None and slo.terms:
        y = slo.terms[0].limit_ms
        ax.plot([capacity.rps], [y], "*", color="black", markersize=14, label="capacity")
        ax.annotate(
            f"{capacity.rps:.1f} rps ({capacity.method})", (capacity.rps, y),
            xytext=(8, -14), textcoords="offset points", fontsize=9,
        )  # fmt: skip
    _log_if_wide(ax, seen)
    ax.set_xlabel("achieved throughput (requests/s, all instances)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency against throughput (open markers: stage failed the SLO)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _svg(fig, "throughput_latency")


# --- tokens (streamed runs) -------------------------------------------------------------


def tokens_svg(stages: Sequence[StageStats], slo: Slo, x_label: str = "") -> str:
    """Three panels against each streamed stage's achieved throughput: TTFT and ITL
    percentiles with the SLO's limits on them, and output tokens/s with goodput."""
    fig, (ttft_ax, itl_ax, tok_ax) = _figure(rows=3, height=8.0)
    streamed = sorted((s for s in stages if s.stream is not None), key=lambda s: s.offered_rps)
    xs = [s.achieved_rps for s in streamed]
    for ax, metric, title in ((ttft_ax, "ttft", "time to first token (ms)"),
                              (itl_ax, "itl", "inter-token latency (ms)")):  # fmt: skip
        seen: list[float] = []
        for stat in ("p50", "p95", "p99"):
            ys = [getattr(s.stream, f"{metric}_{stat}_ms") for s in streamed]
            pts = [(x, y, s.passed) for x, y, s in zip(xs, ys, streamed, strict=True)
                   if y is not None]  # fmt: skip
            if not pts:
                continue
            seen += [y for _, y, _ in pts]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=COLORS[stat],
                    label=stat)  # fmt: skip
            for x, y, passed in pts:
                ax.plot([x], [y], "o", color=COLORS[stat],
                        markerfacecolor=COLORS[stat] if passed else "white")  # fmt: skip
        for term in slo.terms:
            if term.metric == metric:
                seen.append(term.limit_ms)
                ax.axhline(term.limit_ms, color=COLORS.get(term.stat, SLO_COLOR),
                           linestyle="--", linewidth=1)  # fmt: skip
                ax.annotate(f"SLO {term}", (0, term.limit_ms),
                            xycoords=("axes fraction", "data"), xytext=(4, 3),
                            textcoords="offset points", fontsize=8, color=SLO_COLOR)  # fmt: skip
        _log_if_wide(ax, seen)
        ax.set_ylabel(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    tokens = [s.stream.output_tokens_per_s for s in streamed if s.stream is not None]
    tok_ax.plot(xs, tokens, "o-", color=ACHIEVED, label="output tokens/s")
    tok_ax.set_ylabel("output tokens/s")
    good = tok_ax.twinx()
    good.plot(xs, [s.stream.goodput_rps for s in streamed if s.stream is not None], "s--",
              color=COLORS["p95"], label="goodput (requests/s)")  # fmt: skip
    good.set_ylabel("goodput (requests/s)")
    tok_ax.grid(True, alpha=0.3)
    handles = tok_ax.get_legend_handles_labels()
    more = good.get_legend_handles_labels()
    tok_ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
    tok_ax.set_xlabel(x_label or "achieved throughput (requests/s, all instances)")
    ttft_ax.set_title("Tokens per stage (open markers: stage failed the SLO)")
    return _svg(fig, "tokens")


# --- offered vs achieved -----------------------------------------------------------------


def offered_achieved_svg(stages: Sequence[StageStats]) -> str:
    fig, (ax,) = _figure(height=3.2)
    idx = [s.index + 1 for s in stages]
    w = 0.4
    ax.bar([i - w / 2 for i in idx], [s.offered_rps for s in stages], w, color=OFFERED,
           label="offered")  # fmt: skip
    ax.bar(
        [i + w / 2 for i in idx], [s.achieved_rps for s in stages], w, color=ACHIEVED,
        hatch=["//" if s.generator_limited else "" for s in stages], edgecolor="white",
        label="achieved (hatched: generator-limited)",
    )  # fmt: skip
    ax.set_xticks(idx)
    ax.set_xlabel("stage")
    ax.set_ylabel("requests/s")
    ax.set_title("Offered and achieved rate per stage")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _svg(fig, "offered_achieved")


# --- per-second timeline -----------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """Per second of the run: completions, errors and latency percentiles (ms)."""

    seconds: list[int]
    requests: list[int]
    error_rate: list[float]
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    p99_ms: list[float | None]


def timeline(records: Iterable[Mapping[str, Any]], corrected: bool = True) -> Timeline:
    """Each second's own histogram read at p50/p95/p99 (from the intended send time when
    `corrected`, the basis the SLO is judged on)."""
    key = "latency_co_us" if corrected else "latency_us"
    rows = sorted(records, key=lambda r: int(r["second"]))
    out = Timeline([], [], [], [], [], [])
    for r in rows:
        n = int(r["requests"])
        out.seconds.append(int(r["second"]))
        out.requests.append(n)
        out.error_rate.append((n - int(r["ok"])) / n if n else 0.0)
        text = r.get(key) or ""
        if text:
            # One pass over the counts for all three, not one per percentile.
            pct = histograms.decode(text).get_percentile_to_value_dict([50.0, 95.0, 99.0])
            vals: list[float | None] = [pct[50.0] / 1000.0, pct[95.0] / 1000.0,
                                        pct[99.0] / 1000.0]  # fmt: skip
        else:
            vals = [None, None, None]
        out.p50_ms.append(vals[0])
        out.p95_ms.append(vals[1])
        out.p99_ms.append(vals[2])
    return out


def timeline_svg(tl: Timeline, plan: RampPlan, slo: Slo) -> str:
    """Latency, throughput and error rate per second, with stage boundaries and the
    warm-up seconds (left out of the analysis) shaded."""
    fig, (lat, rate, err) = _figure(rows=3, height=7.0)
    for stat in ("p50", "p95", "p99"):
        ys = getattr(tl, f"{stat}_ms")
        lat.plot(tl.seconds, [math.nan if y is None else y for y in ys], linewidth=1,
                 color=COLORS[stat], label=stat)  # fmt: skip
    for term in slo.terms:
        lat.axhline(term.limit_ms, color=COLORS.get(term.stat, SLO_COLOR), linestyle="--",
                    linewidth=1, label=f"SLO {term}")  # fmt: skip
    _log_if_wide(lat, [y for y in tl.p50_ms + tl.p99_ms if y is not None])
    lat.set_ylabel("latency (ms)")
    lat.legend(loc="upper left", fontsize=8, ncol=4)
    rate.plot(tl.seconds, tl.requests, color=ACHIEVED, linewidth=1, label="completed")
    bounds = plan.stage_bounds()
    if bounds:
        rate.step([a for a, _ in bounds] + [bounds[-1][1]],
                  [s.rps for s in plan.stages] + [plan.stages[-1].rps],
                  where="post", color=OFFERED, linewidth=2, label="offered")  # fmt: skip
    rate.set_ylabel("requests/s")
    rate.legend(loc="upper left", fontsize=8)
    err.plot(tl.seconds, [100.0 * e for e in tl.error_rate], color=ERRORS, linewidth=1)
    err.set_ylabel("errors (%)")
    err.set_ylim(bottom=0)
    err.set_xlabel("seconds since the start of the run")
    for ax in (lat, rate, err):
        for start, _ in bounds:
            ax.axvline(start, color="#999999", linewidth=0.8, linestyle=":")
            ax.axvspan(start, start + plan.warmup_seconds, color="#eeeeee", zorder=0)
        ax.grid(True, alpha=0.3)
    lat.set_title("Per second: latency, throughput, errors (grey: warm-up, left out)")
    return _svg(fig, "timeline")


# --- CloudWatch beside the client --------------------------------------------------------

CLOUDWATCH_METRICS = ("ModelLatency", "OverheadLatency")
MAX_ROWS = 20
_UNIT_TO_MS = {"microseconds": 1e-3, "milliseconds": 1.0, "seconds": 1000.0}


@dataclass(frozen=True)
class LatencyPeriod:
    start: float  # epoch seconds of the CloudWatch period's start
    seconds: int  # its length: 60 for SageMaker's own metrics, less for high resolution
    client_ms: float | None
    model_ms: float | None
    overhead_ms: float | None


@dataclass(frozen=True)
class CloudWatchComparison:
    """Per CloudWatch period: the client's latency beside SageMaker's ModelLatency +
    OverheadLatency (same statistic on both sides). `note` says why there is nothing to
    compare, if so."""

    source: str
    stat: str | None
    periods: list[LatencyPeriod]  # those overlapping the run, for the plot
    rows: list[LatencyPeriod] = field(default_factory=list)  # at most MAX_ROWS, for the table
    t0: float = 0.0  # the run's start (epoch), the plot's origin
    note: str | None = None


def _latency_rows(text: str) -> list[dict[str, Any]]:
    """The rows of any CloudWatch CSV (metrics.parse_csv, lenient) whose unit is a time,
    with `value_ms` in milliseconds (no unit: Microseconds, SageMaker's latency unit)."""
    out = []
    for r in metrics.parse_csv(text, lenient=True):
        factor = _UNIT_TO_MS.get((r["unit"] or "Microseconds").lower())
        if factor is not None:
            out.append({**r, "value_ms": r["value"] * factor})
    return out


def _client_stat(stat: str) -> float | None:
    """The quantile (0..1) of a CloudWatch statistic, 0.0 for Average; None if unusable."""
    s = stat.lower()
    if s == "average":
        return 0.0
    if s.startswith("p"):
        try:
            q = float(s[1:]) / 100.0
        except ValueError:
            return None
        return q if 0 < q <= 1 else None
    return None


def cloudwatch_comparison(
    source: str,
    text: str,
    records: Sequence[Mapping[str, Any]],
    started_at: str | None,
    prefer: str | None = None,
) -> CloudWatchComparison:
    """Align CloudWatch's ModelLatency/OverheadLatency periods (1 minute for SageMaker,
    shorter for high-resolution data) with the client's latency over the same seconds. The
    client side uses the latency from the actual send (what SageMaker sees), not the
    coordinated-omission-corrected one. The statistic is `prefer` (the SLO's, e.g. p95: the
    tail it judges) when CloudWatch has it, else Average, else any usable one."""
    data = [r for r in _latency_rows(text) if r["metric"] in CLOUDWATCH_METRICS]
    if not data:
        note = "no ModelLatency or OverheadLatency rows"
        return CloudWatchComparison(source, None, [], note=note)
    stats = {r["stat"] for r in data}
    stat = next((s for s in (prefer, "Average") if s in stats), None) or next(
        (s for s in sorted(stats) if _client_stat(s) is not None), None
    )
    if stat is None:
        note = f"no usable statistic in {sorted(stats)}"
        return CloudWatchComparison(source, None, [], note=note)
    if not started_at:
        return CloudWatchComparison(source, stat, [], note="run.json has no started_at to align on")
    t0 = metrics.epoch_seconds(started_at)
    by_start: dict[float, dict[str, float]] = defaultdict(dict)
    length: dict[float, int] = {}
    for r in data:
        if r["stat"] == stat:
            by_start[r["epoch"]][r["metric"]] = r["value_ms"]
            length[r["epoch"]] = max(1, r["period"])
    starts = sorted(by_start)
    client: dict[float, list[str]] = defaultdict(list)
    for rec in records:
        t = t0 + int(rec["second"]) + 0.5  # the middle of the recorded second
        k = bisect.bisect_right(starts, t) - 1
        if k >= 0 and t < starts[k] + length[starts[k]] and rec.get("latency_us"):
            client[starts[k]].append(str(rec["latency_us"]))
    q = _client_stat(stat)
    periods = []
    for start in starts:
        hist = histograms.merge(client.get(start, []))
        c = histograms.mean_ms(hist) if q == 0.0 else histograms.percentile_ms(hist, q or 0.5)
        m = by_start[start]
        periods.append(LatencyPeriod(start, length[start], c, m.get("ModelLatency"),
                                     m.get("OverheadLatency")))  # fmt: skip
    periods = [p for p in periods if p.client_ms is not None]
    if not periods:
        return CloudWatchComparison(source, stat, [], note="no CloudWatch period overlaps the run")
    # High-resolution data (1 s periods) would make a table of hundreds of rows: merge runs
    # of consecutive periods; the client side is re-read from their merged histograms.
    size = math.ceil(len(periods) / MAX_ROWS)
    table = []
    for k in range(0, len(periods), size):
        group = periods[k : k + size]
        hist = histograms.merge(h for p in group for h in client[p.start])
        c = histograms.mean_ms(hist) if q == 0.0 else histograms.percentile_ms(hist, q or 0.5)
        table.append(LatencyPeriod(group[0].start, sum(p.seconds for p in group), c,
                                   _mean(p.model_ms for p in group),
                                   _mean(p.overhead_ms for p in group)))  # fmt: skip
    return CloudWatchComparison(source, stat, periods, table, t0)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def cloudwatch_svg(cmp: CloudWatchComparison) -> str:
    """Each period as a bar as wide as the period (ModelLatency, OverheadLatency stacked),
    the client's latency over the same seconds on top; x in seconds since the run's start,
    as in the per-second plot."""
    fig, (ax,) = _figure(height=3.5)
    ps = cmp.periods
    xs = [p.start - cmp.t0 for p in ps]
    widths = [p.seconds * 0.9 for p in ps]
    model = [p.model_ms or 0.0 for p in ps]
    overhead = [p.overhead_ms or 0.0 for p in ps]
    ax.bar(xs, model, widths, align="edge", color="#74c476", label="ModelLatency")
    ax.bar(xs, overhead, widths, bottom=model, align="edge", color="#fd8d3c",
           label="OverheadLatency")  # fmt: skip
    ax.plot([x + p.seconds / 2 for x, p in zip(xs, ps, strict=True)],
            [p.client_ms or math.nan for p in ps], "o-", markersize=3, color=ACHIEVED,
            label="client")  # fmt: skip
    ax.set_xlabel("seconds since the start of the run")
    ax.set_ylabel(f"latency, {cmp.stat} (ms)")
    ax.set_title("Client latency beside SageMaker's ModelLatency + OverheadLatency")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _svg(fig, "cloudwatch")


# --- the simulated policy (recommender simulate) ------------------------------------------


def _provisioned_svg(sim: Mapping[str, Any], minutes: list[float]) -> str:
    """A serverless variant's replay: provisioned concurrency in service and desired, its
    utilization against the target, and the cold starts' share; violating minutes shaded."""
    per = sim["per_minute"]
    fig, (ax_n, ax_u) = _figure(rows=2, height=5.0)
    ax_n.step(minutes, per["in_service"], where="post", color=ACHIEVED, label="in service")
    ax_n.step(minutes, per["desired"], where="post", color=OFFERED, label="desired")
    ax_n.set_ylabel("provisioned concurrency")
    ax_n.legend(loc="upper left", fontsize=8)
    ax_u.plot(minutes, per["utilization"], color=COLORS["p95"], lw=1, label="utilization")
    cold = [c / r if r else 0.0 for c, r in zip(per["cold_starts"], per["requests"],
                                                 strict=True)]  # fmt: skip
    ax_u.plot(minutes, cold, color="#9467bd", lw=1, label="cold starts (share of requests)")
    ax_u.axhline(sim["policy"]["target_value"], color="black", ls="--", lw=1, label="target")
    for m, bad in zip(minutes, per["slo_violating"], strict=True):
        if bad:
            ax_u.axvspan(m, m + 1 / 60.0, color="#d62728", alpha=0.25, lw=0)
    ax_u.set_ylabel("share")
    ax_u.set_xlabel("hours")
    ax_u.legend(loc="upper left", fontsize=8)
    return _svg(fig, "simulation")


def simulation_svg(sim: Mapping[str, Any]) -> str:
    """simulation.json drawn: instances in service and desired, and the load per instance
    against the capacity within the SLO, minute by minute; violating minutes shaded."""
    per = sim["per_minute"]
    minutes = [m / 60.0 for m in per["minute"]]
    if "utilization" in per:
        return _provisioned_svg(sim, minutes)
    fig, (ax_n, ax_load) = _figure(rows=2, height=5.0)
    ax_n.step(minutes, per["in_service"], where="post", color=ACHIEVED, label="in service")
    ax_n.step(minutes, per["desired"], where="post", color=OFFERED, label="desired")
    ax_n.set_ylabel("instances")
    ax_n.legend(loc="upper left", fontsize=8)
    ax_load.plot(minutes, per["rps_per_instance"], color=COLORS["p95"], lw=1,
                 label="requests/s per instance")  # fmt: skip
    capacity = sim["endpoint"]["capacity_rps_per_instance"]
    ax_load.axhline(capacity, color="black", ls="--", lw=1, label="capacity within the SLO")
    for m, bad in zip(minutes, per["slo_violating"], strict=True):
        if bad:
            ax_load.axvspan(m, m + 1 / 60.0, color="#d62728", alpha=0.25, lw=0)
    ax_load.set_ylabel("requests/s per instance")
    ax_load.set_xlabel("hours")
    ax_load.legend(loc="upper left", fontsize=8)
    return _svg(fig, "simulation")
