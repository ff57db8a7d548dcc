"""`recommender verify`'s answer: the verdict table (predicted by `simulate` beside what the
endpoint did), the scaling activities, the calibration, and a timeline (offered load,
instances predicted and observed, the SLO statistic against its limit). Renderers over
verify.json's document: they return text; the verify command writes it."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from recommender.report.plots import ACHIEVED, COLORS, OFFERED, SLO_COLOR, _figure, _svg


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"


def verdict_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = [["", "predicted", "observed"]]
    for r in doc["verdict"]:
        unit = f" {r['unit']}" if r["unit"] else ""
        rows.append([r["what"], *(_num(v) + (unit if v is not None else "")
                                  for v in (r["predicted"], r["observed"]))])
    return rows


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows]  # fmt: skip


def summary_lines(doc: Mapping[str, Any]) -> list[str]:
    obs = doc["observed"]
    bad = sum(obs["slo_violating"])
    budget = doc["violation_budget"]
    lines = [f"Observed SLO-violating minutes: {bad} (budget {budget}): "
             + ("within budget" if doc["budget_met"] else "OVER BUDGET")]
    used = doc.get("calibration_used")
    if used:
        lines.append(f"Prediction: calibrated (provisioning "
                     f"{used['simulated_provision_minutes']} min incl. "
                     f"{used['alarm_lag_minutes']} min alarm lag)")  # fmt: skip
    else:
        sim = doc.get("simulated_policy") or {}
        lines.append(f"Prediction: simulate's default provisioning "
                     f"({sim.get('provision_minutes', '-')} min), not calibrated")  # fmt: skip
    cal = doc.get("calibration")
    if cal:
        lines.append(f"Calibration saved: provisioning {cal['provision_minutes']} min, alarm lag "
                     f"{cal['alarm_lag_minutes']} min ({cal['scale_outs']} scale-out(s)); "
                     "simulate and --safety-factor auto use it")  # fmt: skip
    else:
        lines.append("No scale-out finished: nothing to calibrate")
    if doc["status"] != "complete":
        lines.append(f"The replay was {doc['status']}: what was observed until then is kept")
    return lines


def activity_lines(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for a in doc["observed"]["activities"]:
        end = "-" if a["end_minute"] is None else f"{a['end_minute']:g}"
        out.append(f"  minute {a['start_minute']:g} -> {end}: {a['status']}: "
                   f"{a['description']} ({a['cause']})")
    return out


def format_verify_text(doc: Mapping[str, Any]) -> str:
    policy = doc.get("policy") or {}
    head = (f"Verified {doc['endpoint']}/{doc['variant']} over {doc['traffic']['minutes']} "
            f"minutes of {doc['traffic']['source']} (1 minute = {doc['minute_seconds']:g} s)")
    lines = [head]
    if policy:
        lines.append(f"Policy {policy['name']}: target {policy['target_value']:g}, "
                     f"{policy['min_capacity']}-{policy['max_capacity']} instances")
    lines += ["", *_table(verdict_rows(doc)), ""]
    acts = activity_lines(doc)
    if acts:
        lines += ["Scaling activities (minutes from the start):", *acts, ""]
    lines += summary_lines(doc)
    return "\n".join(lines) + "\n"


def format_verify_markdown(doc: Mapping[str, Any]) -> str:
    rows = verdict_rows(doc)
    md = ["# Verify: " + f"{doc['endpoint']}/{doc['variant']}", "",
          f"Traffic: {doc['traffic']['source']}, {doc['traffic']['minutes']} minutes "
          f"(1 minute = {doc['minute_seconds']:g} s). Run: `{doc['run_dir']}`; "
          f"replay: `{doc['load_run_dir']}`.", "",
          "| " + " | ".join(rows[0]) + " |", "|---|---:|---:|"]  # fmt: skip
    md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    md += ["", *[f"- {line}" for line in summary_lines(doc)]]
    acts = activity_lines(doc)
    if acts:
        md += ["", "## Scaling activities", "", *[f"- {a.strip()}" for a in acts]]
    return "\n".join(md) + "\n"


def timeline_svg(doc: Mapping[str, Any], slo_ms: float | None) -> str:
    """Offered load; instances predicted and observed; the SLO statistic against its limit."""
    pred, obs = doc["predicted"], doc["observed"]
    minutes = pred["minute"]
    fig, (ax_load, ax_n, ax_lat) = _figure(rows=3, height=7.0)
    ax_load.step(minutes, [r / 60.0 for r in pred["requests"]], where="post", color=OFFERED,
                 label="offered (traffic)")  # fmt: skip
    ax_load.step(minutes, [r / doc["minute_seconds"] for r in obs["requests"]], where="post",
                 color=ACHIEVED, label="answered (client, by completion)")  # fmt: skip
    ax_load.set_ylabel("requests/s")
    ax_load.legend(loc="upper left", fontsize=8)
    ax_n.step(minutes, pred["in_service"], where="post", color=COLORS["p50"], ls="--",
              label="in service, predicted")  # fmt: skip
    ax_n.step(minutes, [v if v is not None else float("nan") for v in obs["in_service"]],
              where="post", color=ACHIEVED, label="in service, observed")  # fmt: skip
    ax_n.step(minutes, [v if v is not None else float("nan") for v in obs["desired"]],
              where="post", color=OFFERED, label="desired, observed")  # fmt: skip
    ax_n.set_ylabel("instances")
    ax_n.legend(loc="upper left", fontsize=8)
    ax_lat.plot(minutes, [v if v is not None else float("nan") for v in obs["latency_ms"]],
                color=COLORS["p95"], marker=".", label="client latency (SLO statistic)")
    if slo_ms is not None:
        ax_lat.axhline(slo_ms, color=SLO_COLOR, ls="--", lw=1, label="SLO")
    for m, bad in zip(minutes, obs["slo_violating"], strict=True):
        if bad:
            ax_lat.axvspan(m, m + 1, color="#d62728", alpha=0.2, lw=0)
    ax_lat.set_ylabel("ms")
    ax_lat.set_xlabel("minutes of traffic")
    ax_lat.legend(loc="upper left", fontsize=8)
    return _svg(fig, "verify")


def format_verify_html(doc: Mapping[str, Any], slo_ms: float | None) -> str:
    e = html.escape
    rows = verdict_rows(doc)
    head = "".join(f"<th>{e(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    summary = "".join(f"<p>{e(line)}</p>" for line in summary_lines(doc))
    acts = "".join(f"<li>{e(a.strip())}</li>" for a in activity_lines(doc))
    title = f"Verify {doc['endpoint']}/{doc['variant']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}
td:first-child{{text-align:left}}</style></head>
<body><h1>{e(title)}</h1>
<p>{e(doc['traffic']['source'])}, {doc['traffic']['minutes']} minutes (1 minute =
{doc['minute_seconds']:g} s)</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{summary}
<figure>{timeline_svg(doc, slo_ms)}</figure>
<h2>Scaling activities</h2><ul>{acts}</ul>
</body></html>
"""


def slo_limit(run_meta: Mapping[str, Any]) -> float | None:
    """The limit of the run's first SLO term (ms), for the timeline's line."""
    terms = (run_meta.get("slo") or {}).get("terms") or []
    return float(terms[0]["limit_ms"]) if terms else None

