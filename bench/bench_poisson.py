"""Issue 17: the Poisson truth, and the new search (probe + sequential stages) against
today's (climb from --start-rps, full-length stages), in one run.

    .venv/bin/python bench/bench_poisson.py [--configs ABCK] [--repeats 1] [--stage-seconds 30]

For each configuration of `recommender serve --model sleep` (N instances x C slots x S ms)
it computes the TRUTH under Poisson arrivals: the highest Poisson rate at which an M/D/C
queue per instance (1/N of the stream each) keeps p95 within the SLO in steady state, plus
on every request the HTTP, client and scheduling time the run's lowest passing stage shows
beyond the model (bench_accuracy.calibrated_overhead_ms)
(`recommender.queueing.poisson_capacity`: 400,000 simulated requests per rate, exact in law;
see its docstring). Then, alternating, it runs `recommender run` with the defaults
(Poisson arrivals, probe, early stopping) and with `--no-probe --no-early-stop` (today's
search, same arrivals), both with the CLI's defaults (`--start-rps 10`, 30 s stages,
20% warm-up, 5% precision) and the same `--max-rps` (300; 3,000 for K: 2,000 rps), and
prints estimate vs truth, whether the 95% interval holds the truth, and each search's load
time (the controller's clock at its last decision) with the ratio new/today.

Not a test: the figures go into bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recommender import runs
from recommender.cli import main as cli_main
from recommender.local.process import running_server
from recommender.local.server import ServerConfig
from recommender.queueing import poisson_capacity

sys.path.insert(0, str(Path(__file__).parent))
from bench_accuracy import Config as AccuracyConfig  # noqa: E402
from bench_accuracy import calibrated_overhead_ms, runs_root  # noqa: E402

SLO_MS = 100.0


@dataclass(frozen=True)
class Config(AccuracyConfig):
    """bench_accuracy's configuration, with the search's --max-rps."""

    max_rps: float


CONFIGS = (
    Config("A", 1, 4, 20.0, 300),  # bench_accuracy's three, saturation 200, 200, 160
    Config("B", 1, 2, 10.0, 300),
    Config("C", 2, 2, 25.0, 300),
    Config("D", 1, 3, 30.0, 300),  # the c=3, S=30 ms (saturation 100)
    Config("K", 1, 40, 20.0, 3000),  # 2,000 rps
)


def run_tool(url: str, cfg: Config, out: Path, stage_seconds: int, new: bool) -> dict[str, Any]:
    args = [
        "run", "--url", f"{url}/invocations", "--slo", f"p95<={SLO_MS:g}ms",
        "--start-rps", "10", "--max-rps", f"{cfg.max_rps:g}", "--precision", "0.05",
        "--stage-seconds", str(stage_seconds),
        "--instances", str(cfg.instances), "--out", str(out), "--yes",
    ]  # fmt: skip
    if not new:
        args += ["--no-probe", "--no-early-stop"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = cli_main(args)
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    meta = json.loads((run_dir / runs.RUN_FILE).read_text())
    analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
    decisions = meta["search"]["decisions"]
    cap = analysis["capacity"]
    return {
        "code": code,
        "estimate": cap.get("rps_per_instance"),
        "ci": cap.get("ci_rps_per_instance") or cap.get("interval_rps_per_instance"),
        "method": cap["method"],
        "load_s": float(decisions[-1]["at"]) if decisions else math.nan,
        "stages": sum(1 for s in meta["stages"] if s["rps"] > 0),
        "stop": decisions[-1]["code"] if decisions else "-",
        "overhead_ms": calibrated_overhead_ms(cfg, [
            {"offered": s["offered_rps"], "achieved": s["achieved_rps"], "passed": s["passed"],
             "p95_ms": s["p95_ms"]} for s in analysis["stages"]]),  # fmt: skip
        "saturation": (analysis.get("saturation") or {}).get("rps_per_instance"),
        "limited": any(s["generator_limited"] for s in analysis["stages"]),
    }


def plan_estimates() -> None:
    """The duration printed before an AWS-length run (180 s stages, 5 s warm-up, 2 h budget,
    --start-rps 10, --max-rps 1000), new search vs today's, for endpoints of several
    capacities (`recommender.plan.estimate_seconds`, the model `describe_cost` prints)."""
    from recommender.plan import SearchSettings, describe_cost, estimate_seconds

    new = SearchSettings(10, 1000, 180, 5, max_duration=7200, period=60)  # as on AWS
    today = SearchSettings(10, 1000, 180, 5, max_duration=7200, probe=False, early_stop=False,
                           retest=False)
    print(describe_cost(new, "https://runtime.sagemaker.../invocations"))
    print("\n| capacity rps | today min | new min | new/today |\n|---|---|---|---|")
    for c in (20, 50, 100, 200, 500, 900):
        a, b = estimate_seconds(today, c), estimate_seconds(new, c)
        print(f"| {c} | {a / 60:.1f} | {b / 60:.1f} | {b / a:.2f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--plan-estimates", action="store_true",
                   help="only print the AWS-length plan estimates, new vs today")
    p.add_argument("--configs", default="ABCK")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--stage-seconds", type=int, default=30)  # the CLI's default
    p.add_argument("--json", type=Path)
    p.add_argument("--keep", type=Path,
                   help="keep the run directories here (to read their decisions)")
    a = p.parse_args(argv)
    if a.plan_estimates:
        plan_estimates()
        return 0
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} vCPU, load "
          f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = runs_root(stack, a.keep, "bench-poisson-")
        for cfg in (c for c in CONFIGS if c.name in a.configs):
            server = ServerConfig(port=0, instances=cfg.instances, concurrency=cfg.concurrency,
                                  service_time_ms=cfg.service_ms, model="sleep",
                                  max_queue=1000)  # fmt: skip
            with running_server(server) as url:
                for k in range(a.repeats):
                    for new in (True, False):
                        out = Path(tmp) / f"{cfg.name}-{k}-{'new' if new else 'old'}"
                        out.mkdir()
                        t = time.monotonic()
                        r = run_tool(url, cfg, out, a.stage_seconds, new)
                        r["wall_s"] = time.monotonic() - t
                        truth = poisson_capacity(cfg.instances, cfg.concurrency, cfg.service_ms,
                                                 0.95, SLO_MS, r["overhead_ms"])  # fmt: skip
                        r.update(config=cfg.name, repeat=k, new=new,
                                 truth=truth / cfg.instances)  # fmt: skip
                        ci = r["ci"]
                        r["covers"] = bool(ci and ci[0] <= r["truth"] <= ci[1])
                        rows.append(r)
                        err = (r["estimate"] / r["truth"] - 1) * 100 if r["estimate"] else math.nan
                        print(f"{cfg.label()} {'new  ' if new else 'today'} truth "
                              f"{r['truth']:.1f} estimate {r['estimate'] or 0:.1f} ({err:+.1f}%) "
                              f"CI {ci and [round(v, 1) for v in ci]} covers {r['covers']} "
                              f"load {r['load_s']:.0f}s ({r['stages']} stages, stop "
                              f"{r['stop']}) saturation {r['saturation'] or 0:.1f} "
                              f"limited {r['limited']}", flush=True)  # fmt: skip
    print("\n| config | truth (Poisson) | new estimate | CI | covers | new load s | today "
          "estimate | today CI | covers | today load s | new/today |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for cfg in (c for c in CONFIGS if c.name in a.configs):
        for k in range(a.repeats):
            n = next(r for r in rows if r["config"] == cfg.name and r["repeat"] == k and r["new"])
            o = next(r for r in rows if r["config"] == cfg.name and r["repeat"] == k
                     and not r["new"])  # fmt: skip
            ratio = n["load_s"] / o["load_s"]
            ratios.append(ratio)

            def ci(r: dict[str, Any]) -> str:
                return "-" if not r["ci"] else f"{r['ci'][0]:.1f}-{r['ci'][1]:.1f}"

            print(f"| {cfg.label()} | {n['truth']:.1f} | {n['estimate'] or 0:.1f} | {ci(n)} "
                  f"| {n['covers']} | {n['load_s']:.0f} | {o['estimate'] or 0:.1f} | {ci(o)} "
                  f"| {o['covers']} | {o['load_s']:.0f} | {ratio:.2f} |")  # fmt: skip
    if ratios:
        print(f"\nmedian new/today load time: {statistics.median(ratios):.2f}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
