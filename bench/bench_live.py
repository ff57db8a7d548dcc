"""The live status' cost: one `Watcher.snapshot()` a second, in the runner's process.

A run directory grows as the Locust process writes it (one latency.jsonl line a second, with
the second's two encoded histograms at a realistic request rate); after each appended second
the watcher reads the new line and builds a snapshot, as `recommender run` does on a
terminal. Prints the median cost of one snapshot (ms) and that as a share of the second it
comes once in: the CPU taken from a machine that also runs the load generator.

    .venv/bin/python bench/bench_live.py [--seconds 600] [--rps 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from recommender import histograms, runs
from recommender.loadgen.progress import Watcher
from recommender.plan import SearchSettings, parse_slo


def second_line(second: int, rps: int, rng: np.random.Generator) -> str:
    hist = histograms.new()
    for ms in rng.gamma(4.0, 8.0, size=rps):
        histograms.record_ms(hist, float(ms))
    encoded = histograms.encode(hist)
    return json.dumps({"second": second, "stage": second // 30, "requests": rps, "ok": rps,
                       "errors": {}, "latency_us": encoded, "latency_co_us": encoded,
                       "cpu_percent": 40.0}) + "\n"  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rps", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    lines = [second_line(s, args.rps, rng) for s in range(args.seconds)]
    plan = SearchSettings(start_rps=10, max_rps=4000, stage_seconds=30, warmup_seconds=5,
                          max_duration=7200)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        stages = [{"rps": 100 * (i + 1), "start": 30.0 * i, "end": 30.0 * (i + 1)}
                  for i in range(args.seconds // 30 + 1)]  # fmt: skip
        runs.write_json(run_dir / runs.SEARCH_FILE, {"stages": stages, "decisions": []})
        runs.write_json(run_dir / runs.GENERATOR_FILE, {"t0": time.time() - 45})
        watcher = Watcher(run_dir, plan, parse_slo(["p95<=100ms"]))
        costs = []
        with (run_dir / runs.LATENCY_FILE).open("a") as f:
            for line in lines:
                f.write(line)
                f.flush()
                start = time.perf_counter()
                snapshot = watcher.snapshot()
                costs.append(time.perf_counter() - start)
                assert snapshot is not None
    median = statistics.median(costs)
    print(f"{args.seconds} seconds at {args.rps} rps: one snapshot a second costs "
          f"{median * 1000:.2f} ms median ({median:.2%} of a core), "
          f"p99 {sorted(costs)[int(0.99 * len(costs))] * 1000:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
