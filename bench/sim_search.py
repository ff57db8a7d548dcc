"""The whole adaptive search, simulated: its load time over many repeats in minutes.

    .venv/bin/python bench/sim_search.py [--configs ACD] [--repeats 30] [--today] [-v]
                                         [--users 360]

Drives the real `recommender.search.AdaptiveSearch` through the real `loadgen.driver.Driver`
(its interim looks, aborts, rests and stage boundaries, on a simulated clock) against a
simulated `recommender serve --model sleep`: N instances x C slots of exactly S ms, FIFO,
Poisson arrivals split at random between the instances (or, with --users, by connection, as
the real server splits them), a queue of `--max-queue` per instance (503 beyond), a constant
2 ms of HTTP and client time on every request. Each request's latency runs from its intended
send (coordinated omission corrected, as the harness records it) and is counted in the
second it completes, as the recorder does. The queue carries over from one stage to the
next, rests included.

What it is for: trying a rule of the search on hundreds of runs before measuring it for real
(bench_poisson.py, minutes a run). Calibration (bench/README.md, sim_search): today's
search (`--today`) takes 256 s on A and 264 s on C here (medians), 255-286 s and 248-295 s
for real; the current search 58, 58, 108 and 94 s on A, B, C and D here, for real
68-79, 58-78, 98 and 100 s (medians). The server here is ideal (no CPU contention, no
scheduling jitter). By default it splits requests at random between its instances, where
the real one splits connections (SO_REUSEPORT): each of the load generator's users keeps
one connection, to an instance drawn at random, so one instance gets more than its share
(C's real runs: 51-54% of the requests on one of two), and a stage above capacity queues
sooner there. `--users U` models that: U users, each on a random instance, take the
requests in turn (the harness hands a request to the user idle longest; with far more users
than requests in flight, that is a round). It shows what the rules cost, not the noise of a
shared machine.

Prints, per configuration, the load time (the last decision's time) median and 90th
percentile and how often the final bracket holds the Poisson truth (`queueing`'s M/D/c).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from recommender import histograms
from recommender.loadgen.driver import Driver
from recommender.plan import SearchSettings, parse_slo
from recommender.queueing import poisson_capacity
from recommender.search import AdaptiveSearch, Decision

sys.path.insert(0, str(Path(__file__).parent))
from bench_poisson import CONFIGS, Config  # noqa: E402  (bench_accuracy's, with --max-rps)

SLO_MS = 100.0
OVERHEAD_MS = 2.0


def simulate(cfg: Config, seed: int, settings: SearchSettings, max_queue: int = 1000,
             users: int = 0) -> AdaptiveSearch:  # fmt: skip
    """One search, played to its end against the simulated server. `users`: split requests
    by connection, as --users says; 0: each at random."""
    search = AdaptiveSearch(settings, parse_slo([f"p95<={SLO_MS:g}ms"]))
    rng = random.Random(seed)
    assign = [rng.randrange(cfg.instances) for _ in range(users)]  # user -> its instance
    sent_count = 0
    slots = [[0.0] * cfg.concurrency for _ in range(cfg.instances)]  # heaps of free times
    waiting: list[list[float]] = [[] for _ in range(cfg.instances)]  # heaps of start times
    done: dict[int, list[float]] = defaultdict(list)  # second completed -> latencies, ms
    refused: dict[int, int] = defaultdict(int)
    delivered = 0

    def flush(now: float) -> None:
        """Hand the driver every second that has ended, as the recorder does."""
        nonlocal delivered
        while delivered < math.floor(now + 1e-9):
            hist = histograms.new()
            for v in done.pop(delivered, []):
                histograms.record_ms(hist, v)
            ok = int(hist.get_total_count())
            driver.on_second({"second": delivered, "requests": ok + refused.pop(delivered, 0),
                              "ok": ok, "latency_co_us": histograms.encode(hist)})  # fmt: skip
            delivered += 1

    driver = Driver(search, 0.0, arrivals="poisson", seed=seed, flush=flush)
    now = 0.0
    while (nxt := driver.next_time(now)) is not None:
        now = max(now, min(nxt, math.floor(now) + 1))  # every second boundary is visited
        flush(now)
        if driver.done:
            break
        for sent, _ in driver.due(now):
            i = assign[sent_count % users] if users else rng.randrange(cfg.instances)
            sent_count += 1
            queue = waiting[i]
            while queue and queue[0] <= sent:
                heapq.heappop(queue)
            if len(queue) >= max_queue:
                refused[int(sent)] += 1
                continue
            start = max(sent, heapq.heappop(slots[i]))
            end = start + cfg.service_ms / 1000.0
            heapq.heappush(slots[i], end)
            if start > sent:
                heapq.heappush(queue, start)
            done[int(end)].append((end - sent) * 1000.0 + OVERHEAD_MS)
    return search


def describe(d: Decision) -> str:
    return f"    {d.at:6.1f}s {d.rps:8.3f} rps {d.outcome:9} {d.code.value:17} {d.reason[:70]}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", default="ABCD")  # K (2,000 rps) works too, slowly
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--stage-seconds", type=float, default=30.0)  # the CLI's default
    p.add_argument("--today", action="store_true",
                   help="today's search: --no-probe --no-early-stop (no re-test)")
    p.add_argument("-v", "--verbose", action="store_true", help="every decision of every run")
    p.add_argument("--users", type=int, default=0,
                   help="split requests by connection: this many users, each on a random "
                        "instance (the harness's pool for --max-rps 300 is 360); 0: at random")
    a = p.parse_args(argv)
    warmup = min(5.0, 0.2 * a.stage_seconds)  # the CLI's default
    for cfg in (c for c in CONFIGS if c.name in a.configs):
        settings = SearchSettings(10, cfg.max_rps, a.stage_seconds, warmup,
                                  probe=not a.today, early_stop=not a.today,
                                  retest=not a.today)  # fmt: skip
        truth = poisson_capacity(cfg.instances, cfg.concurrency, cfg.service_ms, 0.95, SLO_MS,
                                 overhead_ms=OVERHEAD_MS)  # fmt: skip
        times, held = [], 0
        for k in range(a.repeats):
            search = simulate(cfg, k, settings, users=a.users)
            times.append(search.decisions[-1].at)
            lo, hi = search.lo, search.hi
            held += lo is not None and hi is not None and lo <= truth <= hi
            if a.verbose:
                print(f"{cfg.name} run {k}: {times[-1]:.0f}s, bracket {lo}-{hi}")
                print("\n".join(describe(d) for d in search.decisions))
        times.sort()
        print(f"{cfg.name}: N={cfg.instances} C={cfg.concurrency} S={cfg.service_ms:g}ms, "
              f"truth {truth:.1f} rps: load time median {statistics.median(times):.0f}s, "
              f"p90 {times[int(0.9 * (len(times) - 1))]:.0f}s; final bracket holds the truth "
              f"{held} of {a.repeats}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
