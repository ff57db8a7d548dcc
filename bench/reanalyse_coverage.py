"""Re-analyse the run directories a coverage benchmark kept, with today's analysis: does the
95% interval hold the truth the benchmark computed for each run? (Issue 17: the interval
rules change without re-running the load, so the same stages are compared.)

    .venv/bin/python bench/bench_accuracy.py --configs A --no-fixed --repeats 10 \\
        --keep /tmp/cov --json /tmp/cov.json
    .venv/bin/python bench/reanalyse_coverage.py /tmp/cov.json [more.json ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from recommender import runs
from recommender.analysis import analyze_run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, nargs="+", help="bench_accuracy.py --json files")
    p.add_argument("--config", default="A", help="which configuration's runs [A]")
    a = p.parse_args(argv)
    for path in a.results:
        rows = []
        for r in json.loads(path.read_text())["runs"]:
            run_dir = Path(r["run_dir"])
            if r.get("mode") != "adaptive" or r.get("config") != a.config or not run_dir.exists():
                continue
            truth = float(r["truth"]["throughput"])
            cap = analyze_run(runs.load_run(run_dir)).capacity
            if cap.ci_rps_per_instance is None or cap.rps_per_instance is None:
                continue
            lo, hi = cap.ci_rps_per_instance
            rows.append((truth, cap.rps_per_instance, lo, hi, lo <= truth <= hi,
                         (hi - lo) / cap.rps_per_instance))  # fmt: skip
        for truth, est, lo, hi, holds, width in rows:
            print(f"  truth {truth:6.1f}  estimate {est:6.1f}  95% CI {lo:6.1f}-{hi:6.1f}  "
                  f"{'holds' if holds else 'MISSES'}  width {width:.1%}")  # fmt: skip
        if rows:
            widths = [w for *_, w in rows]
            print(f"{path}: {sum(r[4] for r in rows)} of {len(rows)} hold the truth; width "
                  f"median {statistics.median(widths):.1%} ({min(widths):.1%}-{max(widths):.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
