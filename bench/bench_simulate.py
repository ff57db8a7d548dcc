"""How long the target-tracking simulation takes: a week of traffic at one-minute resolution
(10,080 minutes), one policy, and the 14-factor `--safety-factor auto` sweep.

    .venv/bin/python bench/bench_simulate.py

Prints the median of 5 runs of each. Not a test: timings on a shared machine are noisy, so
the figures are written down in bench/README.md instead of asserted.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from recommender.simulate import (
    Policy,
    StagedLatencyModel,
    choose_safety_factor,
    simulate_factor,
)
from recommender.traffic import synthetic_traffic

REPEATS = 5

# An instance like the demo's: p95 flat to ~90 rps, past the 100 ms SLO near 100 rps.
MODEL = StagedLatencyModel(
    rps=np.array([20.0, 40.0, 60.0, 80.0, 90.0, 100.0, 110.0, 130.0]),
    latency=np.array([30.0, 30.0, 31.0, 33.0, 40.0, 100.0, 160.0, 400.0]),
    capacity_rps=100.0,
    max_rps=130.0,
    stat="p95",
    capacity_method="interpolated",
)
# The same with its SLO's limit, so the queue an overload leaves is modelled (FluidQueue).
QUEUED = replace(MODEL, limit_ms=100.0, quantile=0.95)


def median_seconds(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    week = synthetic_traffic("diurnal", 800, 50, ramp_minutes=60, days=7)
    policy = Policy()
    print(f"python {platform.python_version()} on {platform.machine()}, numpy {np.__version__}")
    for name, model in (("no queue", MODEL), ("queue", QUEUED)):
        one = median_seconds(lambda m=model: simulate_factor(week, m, policy, 0.5))  # type: ignore[misc]
        sweep = median_seconds(lambda m=model: choose_safety_factor(week, m, policy))  # type: ignore[misc]
        print(f"{name}: one week ({week.minutes} minutes), one policy:  {one * 1000:.1f} ms "
              f"(median of {REPEATS})")  # fmt: skip
        print(f"{name}: one week, auto sweep (14 factors):         {sweep * 1000:.1f} ms "
              f"(median of {REPEATS})")  # fmt: skip


if __name__ == "__main__":
    main()
