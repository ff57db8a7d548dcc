"""Asynchronous endpoints: the estimate of mu (completions/s per instance) against the
emulated endpoint's known truth (instances x slots / service time), for two configurations.

    .venv/bin/python bench/bench_async.py        # ~4 min; appends to bench/async_results.md

Each configuration runs `recommender demo --async`'s path (AWS emulator, `serve --async`,
`recommender run --endpoint ... --input-s3 ...`, the default ramp 3 -> 13.5 rps).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from recommender.local.asyncdemo import run_async_demo
from recommender.local.server import ServerConfig

CONFIGS = (
    ServerConfig(port=0, instances=1, concurrency=2, service_time_ms=250.0, model="sklearn"),
    ServerConfig(port=0, instances=2, concurrency=1, service_time_ms=200.0, model="sklearn"),
)


def main() -> None:
    rows = []
    for server in CONFIGS:
        with tempfile.TemporaryDirectory() as out:
            got = run_async_demo(Path(out), lambda _: None, server)
        a = got.analysis
        mu = a.capacity.rps_per_instance or float("nan")
        rec = a.recommendation
        rows.append(
            f"| {server.instances} x {server.concurrency} slots x {server.service_time_ms:g} ms "
            f"| {got.true_rps_per_instance:g} | {mu:.2f} | {mu / got.true_rps_per_instance:.0%} "
            f"| {rec.target_value if rec else float('nan'):.1f} |"
        )
        print(rows[-1], flush=True)
    path = Path(__file__).with_name("async_results.md")
    with path.open("a", encoding="utf-8") as f:
        f.write(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n")
        f.write("| endpoint | true mu (req/s per instance) | estimate | ratio | target |\n")
        f.write("|---|---:|---:|---:|---:|\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
