"""The concurrency `--control concurrency` finds, against the local sleep server's exact truth.

For each configuration (1 instance, C slots of S ms, an SLO on p95), start `recommender serve
--model sleep`, run the closed-loop adaptive search against it with `recommender run`, and
compare the concurrency at the SLO (its bracket and its interpolated value) and the
throughput there with `recommender.local.closed_loop`'s truth. Also says whether the truth
holds whatever the slots' phases (`closed_loop.robust_at_slo`: where it does not, one level
above it can pass) and the least share of its level any stage held in flight (Little's law;
under 0.9 a pass is left out: recommender.search.short_of_level). Prints one row per
configuration; exits 1 when a bracket misses a robust truth.

    .venv/bin/python bench/bench_concurrency.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from recommender.cli import main
from recommender.local import closed_loop
from recommender.local.process import running_server
from recommender.local.server import ServerConfig

# (slots, service ms, p95 limit ms, --max-concurrency); the last: an endpoint fast enough
# that one Locust process's own turnaround is a good part of the latency.
CONFIGS = ((4, 50.0, 75.0, 32), (2, 50.0, 68.0, 16), (8, 20.0, 45.0, 64), (2, 100.0, 250.0, 32),
           (16, 2.0, 20.0, 64))  # fmt: skip


def verdict(a: dict[str, Any]) -> str:
    if a["recommendation"] is not None:
        return "recommendation"
    codes = {w["code"] for w in a["warnings"]}
    return "generator_late" if "generator_stopped" in codes else "none"


def one(slots: int, service_ms: float, limit_ms: float, most: int, out: Path) -> dict[str, Any]:
    truth = closed_loop.concurrency_at_slo(slots, service_ms, 0.95, limit_ms)
    config = ServerConfig(port=0, concurrency=slots, service_time_ms=service_ms, model="sleep",
                          max_queue=10 * most)  # fmt: skip
    with running_server(config) as base:
        code = main(["run", "--url", f"{base}/invocations", "--control", "concurrency",
                     "--max-concurrency", str(most), "--slo", f"p95<={limit_ms:g}ms",
                     "--stage-seconds", "6", "--warmup-seconds", "1", "--max-duration", "180",
                     "--quiet", "--out", str(out)])  # fmt: skip
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    a = json.loads((run_dir / "analysis.json").read_text())
    c = a["concurrency"]
    lo, hi = c["interval_per_instance"] or (c["per_instance"], c["per_instance"])
    stages = sum(1 for s in a["stages"])
    held = min(s["held_in_flight"] / s["concurrency"] for s in a["stages"]
               if s.get("held_in_flight") is not None)  # fmt: skip
    return {"slots": slots, "service_ms": service_ms, "limit_ms": limit_ms, "truth": truth,
            "lo": lo, "hi": hi, "estimate": c["per_instance"],
            "rps": c["throughput_rps_per_instance"],
            "truth_rps": closed_loop.throughput_rps(truth, slots, service_ms),
            "stages": stages, "exit": code, "verdict": verdict(a), "held": held,
            "robust": closed_loop.robust_at_slo(slots, service_ms, 0.95, limit_ms)}  # fmt: skip


def bench() -> int:
    rows = []
    for slots, s, limit, most in CONFIGS:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(one(slots, s, limit, most, Path(tmp)))
    print("| slots x S | SLO | truth (in flight) | robust | bracket | interpolated | rps there "
          "(truth) | least held | stages | verdict |")
    print("|---|---|---:|---|---|---:|---|---:|---:|---|")
    missed = 0
    for r in rows:
        if r["lo"] is None:
            bracket, ok = "none", False
        else:
            ok = r["lo"] <= r["truth"] < r["hi"] or r["lo"] == r["truth"]
            bracket = f"{r['lo']:g}-{r['hi']:g}{'' if ok else ' MISSED'}"
        missed += not ok and r["robust"] and r["verdict"] == "recommendation"
        est = "-" if r["estimate"] is None else f"{r['estimate']:.2f}"
        rps = "-" if r["rps"] is None else f"{r['rps']:.1f}"
        print(f"| {r['slots']:g} x {r['service_ms']:g} ms | p95<={r['limit_ms']:g}ms | "
              f"{r['truth']:g} | {'yes' if r['robust'] else 'no'} | {bracket} | {est} | "
              f"{rps} ({r['truth_rps']:.1f}) | {r['held']:.2f} | {r['stages']} | "
              f"{r['verdict']} |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(bench())
