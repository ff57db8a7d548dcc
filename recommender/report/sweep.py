"""`recommender sweep`'s answer as text: the ranked table, the winner and its apply command
(terminal and report.md), and report.html with one comparison plot (latency against
throughput per instance for each type, and each type's cost). Renderers over sweep.json's
document: they return text, the sweep writes it."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from recommender.report.plots import _svg

PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")
HEADERS = ("rank", "instance type", "capacity/instance", "95% interval", "$/hour",
           "$/M requests", "at peak", "day: instance-h", "day: cost", "meets SLO")  # fmt: skip


def _num(v: float | None, fmt: str, prefix: str = "") -> str:
    return "-" if v is None else f"{prefix}{v:{fmt}}"


def table_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for c in doc["ranking"]:
        iv = c["interval_rps_per_instance"]
        cap = _num(c["rps_per_instance"], ".1f") + " rps"
        if c["method"] not in ("interpolated", "none"):
            cap += f" ({c['method'].replace('_', ' ')})"
        rows.append([
            str(c["rank"]), c["instance_type"], cap if c["rps_per_instance"] else "-",
            f"{iv[0]:.1f} - {iv[1]:.1f}" if iv else "-", f"${c['usd_per_hour']:.3f}",
            _num(c["usd_per_million_requests"], ".3f", "$"), _num(c["instances_at_peak"], "d"),
            _num(c["day_instance_hours"], ".1f"), _num(c["day_cost_usd"], ".2f", "$"),
            "yes" if c["meets_slo"] else "no",
        ])  # fmt: skip
    return rows


def verdict_lines(doc: Mapping[str, Any]) -> list[str]:
    t = doc["traffic"]
    lines = [f"Within {doc['slo']}, for {t['source']} (peak {t['peak_rps']:g} rps), "
             f"safety factor {doc['safety_factor']:g}:"]  # fmt: skip
    w = doc["winner"]
    if w is None:
        lines.append("No configuration met the SLO: relax --slo, or try larger types.")
    else:
        best = doc["ranking"][0]
        lines.append(
            f"Cheapest that meets the SLO: {w['instance_type']} "
            f"({_num(best['day_cost_usd'], ',.2f', '$')} a day, "
            f"{_num(best['usd_per_million_requests'], '.3f', '$')} per million requests, "
            f"MinCapacity {best['min_capacity']}, MaxCapacity {best['max_capacity']})."
        )
        lines.append(f"Apply: {w['apply_command']}")
        if w["kept"]:
            lines.append(f"Kept deployed: {w['endpoint']}.")
    if doc["prices"]["indicative"]:
        p = doc["prices"]
        lines.append(f"Prices from the built-in table are indicative ({p['table_region']} "
                     f"on-demand, noted {p['table_noted']}): pass --instance-price "
                     "TYPE=USD for yours.")  # fmt: skip
    if doc["status"] == "interrupted":
        lines.append("Interrupted: the ranking holds only what was measured.")
    return lines


def format_sweep_text(doc: Mapping[str, Any]) -> str:
    rows = [list(HEADERS), *table_rows(doc)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    out = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
           for r in rows]  # fmt: skip
    return "\n".join(out + [""] + verdict_lines(doc)) + "\n"


def format_sweep_markdown(doc: Mapping[str, Any]) -> str:
    lines = [f"# Sweep {doc['sweep_id']}" + (f": model {doc['model']}" if doc["model"] else ""),
             "", *verdict_lines(doc), "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]  # fmt: skip
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(doc)]
    lines += ["", "Capacity per instance: the adaptive search's estimate within the SLO, with "
              "its 95% interval. $/M requests: the hourly price over the requests an instance "
              "serves in an hour at that capacity. At peak: instances at the recommended "
              "target. Day: the recommended target-tracking policy simulated over the traffic.",
              "", "Each type's run directory (`recommender analyze|report|apply RUN_DIR`):", ""]
    lines += [f"- {c['instance_type']}: `{c['run_dir']}`" for c in doc["ranking"]]
    return "\n".join(lines) + "\n"


def comparison_svg(ranking: Sequence[Mapping[str, Any]], slo_ms: float | None) -> str:
    """Left: p95 against throughput per instance, one line per type, the SLO dashed.
    Right: each type's cost for the day (or $ per million requests without a day)."""
    fig = Figure(figsize=(10.0, 4.0), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    names, costs, colors = [], [], []
    for i, c in enumerate(ranking):
        color = PALETTE[i % len(PALETTE)]
        pts = c["curve"]
        if pts:
            left.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color,
                      label=c["instance_type"])  # fmt: skip
        if c["rps_per_instance"]:
            left.axvline(c["rps_per_instance"], color=color, linestyle=":", linewidth=1)
        names.append(c["instance_type"])
        costs.append(c["day_cost_usd"] or 0.0)
        colors.append(color)
    if slo_ms is not None:
        left.axhline(slo_ms, color="#555555", linestyle="--", linewidth=1, label="SLO")
    left.set_xlabel("throughput per instance (requests/s)")
    left.set_ylabel("p95 latency (ms)")
    left.set_yscale("log")
    left.legend(fontsize=8)
    left.set_title("Latency against throughput (dotted: capacity)", fontsize=10)
    right.barh(names[::-1], costs[::-1], color=colors[::-1])
    right.set_xlabel("USD per day under the recommended policy")
    right.set_title("Cost for the traffic given", fontsize=10)
    return _svg(fig, "sweep")


def _slo_ms(slo: str) -> float | None:
    from recommender.plan import parse_slo

    terms = parse_slo([slo]).terms
    return terms[0].limit_ms if terms else None


def format_sweep_html(doc: Mapping[str, Any]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                   for r in table_rows(doc))  # fmt: skip
    verdict = "".join(f"<p>{e(line)}</p>" for line in verdict_lines(doc))
    runs = "".join(f"<li>{e(c['instance_type'])}: <code>{e(c['run_dir'])}</code></li>"
                   for c in doc["ranking"])  # fmt: skip
    slo_ms = _slo_ms(doc["slo"].split(",")[0])
    svg = comparison_svg(doc["ranking"], slo_ms) if doc["ranking"] else ""
    title = f"Sweep {doc['sweep_id']}" + (f": model {doc['model']}" if doc["model"] else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}
td:nth-child(2),th:nth-child(2){{text-align:left}}</style></head>
<body><h1>{e(title)}</h1>{verdict}
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<figure>{svg}</figure>
<h2>Run directories</h2><ul>{runs}</ul>
</body></html>
"""
