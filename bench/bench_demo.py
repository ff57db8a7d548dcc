"""`make demo`, N times: does it land within 5% of the truth it prints, its interval covering it?

    .venv/bin/python bench/bench_demo.py [--runs 10] [--neighbour]

Each run is `recommender demo --yes` as a user runs it (default plan, 10 s stages), in a
directory of its own; the truth is the one the demo prints for this machine ("True capacity
... on this machine: X rps"), the estimate and the 95% interval those of its analysis.json.
`--neighbour` runs tests/busy_neighbour.py (a CPU-bound process on one core) beside every run,
as `.ci/run` does beside the suite. Issue 27 asks for 10 of 10 within 5%, covered, with and
without it (bench/README.md, "bench_demo.py").
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRUTH = re.compile(r"True capacity of the demo server .* on this machine: ([0-9.]+) rps")


def one_run(out: Path) -> tuple[int, float | None, float | None, tuple[float, float] | None]:
    """(exit code, printed truth, estimate, interval) of one `recommender demo`."""
    proc = subprocess.run([sys.executable, "-m", "recommender", "demo", "--yes", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    m = TRUTH.search(proc.stdout)
    truth = float(m.group(1)) if m else None
    found = list(out.glob("*/analysis.json"))
    if not found:
        return proc.returncode, truth, None, None
    capacity = json.loads(found[0].read_text())["capacity"]
    ci = capacity.get("ci_rps_per_instance")
    return proc.returncode, truth, capacity.get("rps_per_instance"), tuple(ci) if ci else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--neighbour", action="store_true", help="a CPU-bound process on one core")
    a = p.parse_args(argv)
    neighbour = (subprocess.Popen([sys.executable, str(ROOT / "tests" / "busy_neighbour.py"),
                                   "--seconds", "7200"]) if a.neighbour else None)  # fmt: skip
    errors, held, covered = [], 0, 0
    try:
        for i in range(1, a.runs + 1):
            with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
                code, truth, est, ci = one_run(Path(tmp))
            if truth is None or est is None or ci is None:
                print(f"run {i}: exit {code}, no estimate", flush=True)
                continue
            err = est / truth - 1
            errors.append(err)
            held += abs(err) <= 0.05
            covered += ci[0] <= truth <= ci[1]
            print(f"run {i}: exit {code}, truth {truth:.1f}, estimate {est:.1f} ({err:+.1%}), "
                  f"interval {ci[0]:.1f}-{ci[1]:.1f} "
                  f"{'covers' if ci[0] <= truth <= ci[1] else 'MISSES'}", flush=True)  # fmt: skip
    finally:
        if neighbour is not None:
            neighbour.kill()
    if errors:
        print(f"{held} of {a.runs} within 5%, {covered} of {a.runs} covered; median error "
              f"{statistics.median(errors):+.1%}, worst {max(errors, key=abs):+.1%}")  # fmt: skip
    return 0 if held == covered == a.runs else 1


if __name__ == "__main__":
    sys.exit(main())
