"""How accurate is the capacity search? Real runs against servers whose capacity is known.

    .venv/bin/python bench/bench_accuracy.py [--arrivals poisson|uniform] [--repeats 10]
        [--configs ABCD] [--no-fixed] [--json results.json]

With `--arrivals poisson` (the default, as the tool's) the truth is the Poisson one
(`poisson_truth`: each instance an M/D/C queue fed its share of a Poisson stream, steady
state, plus the HTTP/client time calibrated at the run's lowest passing stage), stages are
10 s with 2 s warm-up, and configuration D (issue 17's C=3, S=30 ms) is added. What follows
describes `--arrivals uniform` (bench/README.md, bench_accuracy: its last paragraph).

For each configuration of `recommender serve --model sleep` (N instances x C slots x S ms
per request) the script

1. computes the TRUE capacity for the benchmark's SLO (p95 <= 100 ms, errors <= 1%, 6 s
   stages with 1 s warm-up) by simulating the queue the load test builds: a uniform arrival
   schedule handed FIFO to Locust's idle users, each user holding one keep-alive connection
   to one instance (SO_REUSEPORT), each instance C slots of exactly S ms, FIFO queue,
   503 beyond 100 waiting, plus the HTTP and client time the run's lowest stage shows
   (its p95 minus S, about 5 ms) on every request. The truth is the highest offered rate
   whose simulated stage
   p95, over the same measured window (whole seconds after the warm-up, by completion
   time, latency from the intended send), is within the SLO; its throughput is the
   sustained throughput at that rate (each instance's share of it, capped at its C/S).
   With N > 1 the split of users over instances is random per run, so each run's truth is
   simulated from the split it got (requests each instance served, from the server's
   /stats) over 20 random orders of the users in the queue: the median, and in brackets
   the 5th-95th percentile band, which is the truth's own uncertainty (the model check
   printed per configuration compares simulated and measured p95 per stage);
2. runs the adaptive search (`recommender run --search adaptive --precision 0.05`);
3. runs the fixed ramp over the same range with enough evenly spaced stages for the same
   5% bracket;
4. repeats the adaptive run of the first configuration `--repeats` times in all and counts
   how many 95% intervals cover the truth.

Not a test: it takes about 15 minutes and the figures go into bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import importlib.metadata
import io
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from recommender import runs
from recommender.cli import main as cli_main
from recommender.local.process import running_server
from recommender.local.server import ServerConfig

SLO_MS = 100.0
SLO_QUANTILE = 0.95
MAX_ERROR_RATE = 0.01
STAGE_SECONDS = 6
WARMUP_SECONDS = 1
PRECISION = 0.05
START_RPS = 75.0  # a quarter of the top rate, for both controllers
MAX_RPS = 300.0  # one Locust process on two shared cores keeps up with this
MAX_QUEUE = 100  # ServerConfig's default: requests waiting per instance before 503


@dataclass(frozen=True)
class Config:
    name: str
    instances: int
    concurrency: int
    service_ms: float

    @property
    def saturation(self) -> float:
        """N*C/S, requests/s for the whole server."""
        return self.instances * self.concurrency / (self.service_ms / 1000.0)

    def label(self) -> str:
        return f"{self.name}: N={self.instances} C={self.concurrency} S={self.service_ms:g}ms"


CONFIGS = (
    Config("A", 1, 4, 20.0),  # 200 rps
    Config("B", 1, 2, 10.0),  # 200 rps, fewer slots, shorter service: other queueing
    Config("C", 2, 2, 25.0),  # 160 rps over two instances
    Config("D", 1, 3, 30.0),  # 100 rps: issue 17's c=3, S=30 ms (Poisson arrivals only)
)
ARRIVALS = "poisson"  # set by --arrivals


# --- the truth: simulate the queue the load test builds ------------------------------------


@dataclass(frozen=True)
class StageSim:
    p95_ms: float
    throughput: float  # completions per second in the measured window
    error_rate: float

    @property
    def passed(self) -> bool:
        return max(self.p95_ms / SLO_MS, self.error_rate / MAX_ERROR_RATE) <= 1.0


def simulate_stage(
    rate: float,
    seconds: float,
    cfg: Config,
    assign: Sequence[int],
    overhead_ms: float = 0.0,
    warmup: float = WARMUP_SECONDS,
) -> StageSim:
    """One stage at `rate` from an empty system.

    Arrivals are exactly 1/rate apart (the generator's default, uniform). Ticket k goes to the
    user that has been idle longest (gevent's Queue serves waiting getters FIFO); when every
    user is busy it waits for the first to come back (latency still counts from the intended
    time). `assign[u]` is the instance user u's connection went to. An instance runs C
    requests at once for exactly S each, queues the rest FIFO, and answers 503 at once when
    MAX_QUEUE already wait. Counted: requests completing in the whole seconds
    [ceil(warmup), floor(seconds)), as the analysis counts them. `overhead_ms` is added to
    every latency: HTTP and client time outside the slot, measured on the idle server.
    """
    service = cfg.service_ms / 1000.0
    idle = deque(range(len(assign)))
    busy: list[tuple[float, int]] = []  # (time the user is free again, user)
    slots = [[0.0] * cfg.concurrency for _ in range(cfg.instances)]  # heaps of free times
    waiting: list[deque[float]] = [deque() for _ in range(cfg.instances)]  # queued starts
    first, last = math.ceil(warmup), math.floor(seconds)
    latencies: list[float] = []
    counted = errors = 0
    k = 0
    while (t := k / rate) < seconds:
        k += 1
        while busy and busy[0][0] <= t:
            idle.append(heapq.heappop(busy)[1])
        if idle:
            sent, user = t, idle.popleft()
        else:
            sent, user = heapq.heappop(busy)
        i = assign[user]
        queue = waiting[i]
        while queue and queue[0] <= sent:
            queue.popleft()
        if slots[i][0] > sent and len(queue) >= MAX_QUEUE:
            end, ok = sent, False
        else:
            start = max(sent, heapq.heappop(slots[i]))
            end = start + service
            heapq.heappush(slots[i], end)
            if start > sent:
                queue.append(start)
            ok = True
        heapq.heappush(busy, (end, user))
        if first <= math.floor(end) < last:
            counted += 1
            if ok:
                latencies.append(end - t + overhead_ms / 1000.0)
            else:
                errors += 1
    if latencies:
        p95 = 1000.0 * float(
            np.percentile(latencies, SLO_QUANTILE * 100, method="inverted_cdf")
        )  # the value at or above 95% of requests, as HdrHistogram reads it
    else:
        p95 = math.inf
    return StageSim(p95, counted / max(1, last - first), errors / counted if counted else 1.0)


@dataclass(frozen=True)
class Truth:
    rate: float  # highest offered rate within the SLO, whole server
    throughput: float  # what the server completes at that rate, whole server


def truth_for_assignment(cfg: Config, assign: Sequence[int], overhead_ms: float = 0.0) -> Truth:
    """Bisect the offered rate to where the simulated stage stops passing (30 steps).

    The throughput at that rate is each instance's share of it, capped at its C/S: the rate
    it completes requests at once saturated. (The simulated count in a 5 s window says the
    same give or take one request, i.e. 0.2 rps, from where the window cuts the slots'
    cadence.)
    """
    lo, hi = 0.3 * cfg.saturation, 1.5 * cfg.saturation
    if not simulate_stage(lo, STAGE_SECONDS, cfg, assign, overhead_ms).passed:
        raise AssertionError(f"{cfg.label()}: fails at {lo:g} rps in simulation")
    for _ in range(30):
        mid = (lo + hi) / 2
        if simulate_stage(mid, STAGE_SECONDS, cfg, assign, overhead_ms).passed:
            lo = mid
        else:
            hi = mid
    per_instance = cfg.concurrency / (cfg.service_ms / 1000.0)
    shares = [assign.count(i) / len(assign) for i in range(cfg.instances)]
    return Truth(lo, sum(min(lo * share, per_instance) for share in shares))


def assignments(
    cfg: Config, users: int, rng: random.Random, counts: Sequence[int] | None, draws: int
) -> list[list[int]]:
    """Users' instances in their initial FIFO order. `counts` (requests each instance served)
    fixes the share of users per instance; without it each user picks an instance at random."""
    if cfg.instances == 1:
        return [[0] * users]
    out = []
    for _ in range(draws):
        if counts is None:
            assign = [rng.randrange(cfg.instances) for _ in range(users)]
        else:
            total = sum(counts)
            per = [round(users * c / total) for c in counts]
            per[per.index(max(per))] += users - sum(per)
            assign = [i for i, n in enumerate(per) for _ in range(n)]
            rng.shuffle(assign)  # the order users line up in is unrelated to their instance
        out.append(assign)
    return out


@dataclass(frozen=True)
class TruthRange:
    rate: float  # median over the draws, whole server
    throughput: float
    low: float  # 5th-95th percentile of the draws' throughput (0 spread when N=1)
    high: float

    def per_instance(self, cfg: Config) -> float:
        return self.throughput / cfg.instances


def truth(
    cfg: Config,
    users: int,
    counts: Sequence[int] | None = None,
    overhead_ms: float = 0.0,
    draws: int = 40,
    seed: int = 1,
) -> TruthRange:
    got = [truth_for_assignment(cfg, a, overhead_ms)
           for a in assignments(cfg, users, random.Random(seed), counts, draws)]  # fmt: skip
    x = [t.throughput for t in got]
    lo, hi = np.percentile(x, [5, 95])
    return TruthRange(statistics.median(t.rate for t in got), statistics.median(x),
                      float(lo), float(hi))  # fmt: skip


def poisson_truth(
    cfg: Config, counts: Sequence[int] | None = None, overhead_ms: float = 0.0
) -> TruthRange:
    """The truth under Poisson arrivals: the highest rate (whole server) at which the p95 of
    every request's latency stays within the SLO in steady state, each instance an M/D/C
    queue fed its share of the stream (`counts`: requests each instance served, as the run
    split them; equal shares without), plus `overhead_ms` on every request.

    Method: recommender.queueing's exact-in-law simulation (400,000 requests per instance
    per rate, the same exponential draws at every rate), the instances' latencies pooled in
    proportion to their shares, the rate bisected 30 times. Its throughput is the rate itself
    (below saturation a Poisson stream's requests are all served). With one instance this is
    `poisson_capacity`; its sampling error is about 0.1%.
    """
    from recommender.queueing import md_c_latency_ms

    shares = ([1.0 / cfg.instances] * cfg.instances if not counts
              else [c / sum(counts) for c in counts])  # fmt: skip
    rng = np.random.default_rng(1)
    gaps = [rng.exponential(1.0, 420_000) for _ in shares]
    per_instance = cfg.concurrency / (cfg.service_ms / 1000.0)
    lo, hi = 0.0, per_instance / max(shares)

    def within(rate: float) -> bool:
        lat = np.concatenate([
            md_c_latency_ms(rate * sh, cfg.concurrency, cfg.service_ms, gaps=g)[
                : int(400_000 * sh / max(shares))]
            for sh, g in zip(shares, gaps, strict=True)
        ]) + overhead_ms  # fmt: skip
        return float(np.quantile(lat, SLO_QUANTILE, method="inverted_cdf")) <= SLO_MS

    for _ in range(30):
        mid = (lo + hi) / 2
        if within(mid):
            lo = mid
        else:
            hi = mid
    return TruthRange(lo, lo, lo, lo)


def truth_for_run(cfg: Config, users: int, counts: Sequence[int] | None, overhead_ms: float,
                  draws: int = 20) -> TruthRange:  # fmt: skip
    if ARRIVALS == "poisson":
        return poisson_truth(cfg, counts, overhead_ms)
    return truth(cfg, users, counts, overhead_ms, draws=draws)


# --- running the tool ---------------------------------------------------------------------


def idle_overhead_ms(base_url: str, service_ms: float, n: int = 200) -> float:
    """p95 of `n` requests sent one at a time (nothing queues) beyond S: the HTTP and client
    time outside the slot. Under Poisson arrivals even the lowest stage queues, so its p95
    cannot tell this; the run's Locust client adds about as much as urllib here."""
    import urllib.request

    took = []
    for _ in range(n):
        req = urllib.request.Request(f"{base_url}/invocations", data=b"[[1, 2, 3, 4]]",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()
        took.append(1000 * (time.perf_counter() - t))
    return max(0.0, float(np.percentile(took, 95)) - service_ms)


def calibrated_overhead_ms(
    cfg: Config, stage_table: Sequence[dict[str, Any]], counts: Sequence[int] | None = None
) -> float:
    """Under Poisson arrivals: the HTTP, client and scheduling time beyond the M/D/c queue,
    as the run's lowest passing stage shows it: its measured p95 minus the model's p95 at its
    achieved rate (split over the instances as `counts` say, equally without). It calibrates
    the model's one free constant at a load the run itself played (on a busy shared machine
    this is more than the idle server's)."""
    from recommender.queueing import md_c_latency_ms

    passing = [s for s in stage_table if s["passed"] and s["p95_ms"]]
    if not passing:
        return 0.0
    low = min(passing, key=lambda s: s["offered"])
    shares = ([1.0 / cfg.instances] * cfg.instances if not counts
              else [c / sum(counts) for c in counts])  # fmt: skip
    lat = np.concatenate([
        md_c_latency_ms(low["achieved"] * sh, cfg.concurrency, cfg.service_ms,
                        samples=int(200_000 * sh / max(shares)))
        for sh in shares
    ])  # fmt: skip
    model = float(np.quantile(lat, SLO_QUANTILE, method="inverted_cdf"))
    return max(0.0, float(low["p95_ms"]) - model)


def instance_counts(base_url: str, instances: int) -> list[int]:
    """Requests each instance has served so far: /stats over fresh connections until every
    instance has answered (the kernel picks the instance per connection)."""
    seen: dict[int, int] = {}
    for _ in range(200):
        with urllib.request.urlopen(f"{base_url}/stats", timeout=5) as r:
            data = json.loads(r.read())
        seen[int(data["instance"])] = int(data["served"]) + int(data["rejected_503"])
        if len(seen) == instances:
            return [seen[i] for i in range(instances)]
    raise RuntimeError(f"only instances {sorted(seen)} of {instances} answered /stats")


@dataclass
class RunResult:
    config: str
    mode: str
    run_dir: str
    exit_code: int
    users: int
    estimate: float | None  # rps per instance
    ci: tuple[float, float] | None
    bracket: tuple[float, float] | None
    method: str
    test_seconds: float  # run.json ended_at - started_at
    load_seconds: float  # the controller's clock at its last decision
    wall_seconds: float  # the whole `recommender run`, Locust start and analysis included
    stop_reason: str
    stages: int
    split: list[int]
    truth: TruthRange | None = None
    warnings: list[str] = field(default_factory=list)
    stage_table: list[dict[str, Any]] = field(default_factory=list)
    machine_cpu_percent: float | None = None
    idle_overhead_ms: float | None = None  # Poisson: calibrated_overhead_ms

    @property
    def error(self) -> float | None:
        if self.estimate is None or self.truth is None:
            return None
        return self.estimate / self.truth_per_instance - 1.0

    @property
    def truth_per_instance(self) -> float:
        assert self.truth is not None
        return self.truth.throughput / self.n

    @property
    def cfg(self) -> Config:
        return next(c for c in CONFIGS if c.name == self.config)

    @property
    def n(self) -> int:
        return self.cfg.instances

    @property
    def overhead_ms(self) -> float:
        """The lowest-rate stage's p95 beyond S: HTTP and client time outside the slot, which
        the queue model adds to every request (under Poisson arrivals: calibrated at the
        lowest passing stage, `calibrated_overhead_ms`)."""
        if self.idle_overhead_ms is not None:
            return self.idle_overhead_ms
        low = min(self.stage_table, key=lambda s: s["offered"])
        return max(0.0, (low["p95_ms"] or 0.0) - self.cfg.service_ms)

    @property
    def margin(self) -> float | None:
        """How far inside (+) or outside (-) the interval's nearer end the truth lies, as a
        share of the truth."""
        if self.ci is None or self.truth is None:
            return None
        t = self.truth_per_instance
        return min(t - self.ci[0], self.ci[1] - t) / t

    @property
    def covers(self) -> bool | None:
        if self.ci is None or self.truth is None:
            return None
        return self.ci[0] <= self.truth_per_instance <= self.ci[1]

    @property
    def covers_rate(self) -> bool | None:
        """Against the offered-rate truth instead of its throughput."""
        if self.ci is None or self.truth is None:
            return None
        return self.ci[0] <= self.truth.rate / self.n <= self.ci[1]


def fixed_stage_count(truth_rps: float) -> int:
    """Evenly spaced stages from START_RPS to MAX_RPS, close enough that the bracket around
    the truth is within PRECISION of its lower end: step <= p * truth / (1 + p)."""
    step = PRECISION * truth_rps / (1 + PRECISION)
    return 1 + math.ceil((MAX_RPS - START_RPS) / step)


def seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def run_tool(
    url: str, cfg: Config, mode: str, out: Path, stages: int = 0, tag: str = ""
) -> RunResult:
    args = [
        "run", "--url", f"{url}/invocations", "--slo", f"p95<={SLO_MS:g}ms",
        "--max-error-rate", f"{MAX_ERROR_RATE:g}", "--search", mode,
        "--start-rps", f"{START_RPS:g}", "--max-rps", f"{MAX_RPS:g}",
        "--stage-seconds", str(STAGE_SECONDS), "--warmup-seconds", str(WARMUP_SECONDS),
        "--instances", str(cfg.instances), "--out", str(out), "--name", f"{cfg.name}-{mode}{tag}",
        "--yes", "--arrivals", ARRIVALS,
    ]  # fmt: skip
    if mode == "adaptive":
        args += ["--precision", f"{PRECISION:g}"]
    else:
        args += ["--stages", str(stages)]
    before = instance_counts(url, cfg.instances)
    psutil.cpu_percent(None)
    buf = io.StringIO()
    t = time.monotonic()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = cli_main(args)
    wall = time.monotonic() - t
    busy = psutil.cpu_percent(None)
    after = instance_counts(url, cfg.instances)
    dirs = [p for p in out.iterdir() if p.is_dir()]
    if code != 0 or len(dirs) != 1:
        sys.stderr.write(buf.getvalue()[-3000:])
    if len(dirs) != 1:
        raise RuntimeError(f"{cfg.name} {mode}: exit {code}, no run directory")
    run_dir = dirs[0]
    meta = json.loads((run_dir / runs.RUN_FILE).read_text())
    analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
    cap = analysis["capacity"]
    decisions = meta["search"].get("decisions", [])
    return RunResult(
        config=cfg.name,
        mode=mode,
        run_dir=str(run_dir),
        exit_code=code,
        users=int(meta["generator"]["users"]),
        estimate=cap.get("rps_per_instance") if cap["method"] == "interpolated" else None,
        ci=tuple(cap["ci_rps_per_instance"]) if cap.get("ci_rps_per_instance") else None,
        bracket=(
            tuple(cap["interval_rps_per_instance"])
            if cap.get("interval_rps_per_instance")
            else None
        ),  # fmt: skip
        method=cap["method"],
        test_seconds=seconds_between(meta["started_at"], meta["ended_at"]),
        load_seconds=float(decisions[-1]["at"]) if decisions else math.nan,
        wall_seconds=wall,
        stop_reason=(decisions[-1]["why"] if decisions else "no decision"),
        stages=sum(1 for s in meta["stages"] if s["rps"] > 0),
        split=[a - b for a, b in zip(after, before, strict=True)],
        warnings=[w["code"] for w in analysis.get("warnings", [])],
        stage_table=[
            {
                "offered": s["offered_rps"],
                "achieved": s["achieved_rps"],
                "seconds": s["seconds"],
                "p95_ms": s["p95_ms"],
                "score": s["score"],
                "passed": s["passed"],
                "generator_limited": s["generator_limited"],
                "locust_cpu_max": s["cpu_percent_max"],
            }
            for s in analysis["stages"]
        ],  # fmt: skip
        machine_cpu_percent=busy,
    )


def model_check(cfg: Config, run: RunResult) -> list[tuple[float, float, float]]:
    """(offered rps, measured p95, simulated p95) for the run's stages near the truth: does
    the simulation that defines the truth describe what the real server did?"""
    assert run.truth is not None
    assign = assignments(cfg, run.users, random.Random(2), run.split, 1)[0]
    rows = []
    for s in run.stage_table:
        if 0.85 * run.truth.rate <= s["offered"] <= 1.15 * run.truth.rate:
            seconds = s["seconds"] + WARMUP_SECONDS
            sim = simulate_stage(s["offered"], seconds, cfg, assign, run.overhead_ms)
            rows.append((s["offered"], s["p95_ms"] or math.inf, sim.p95_ms))
    return rows


# --- report ---------------------------------------------------------------------------------


def fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def yes_no(b: bool | None) -> str:
    return "-" if b is None else ("yes" if b else "NO")


def table(rows: list[tuple[Config, TruthRange, RunResult, RunResult]]) -> str:
    head = ("| config | N*C/S per inst. | truth per inst. (offered) | adaptive estimate | error "
            "| 95% CI | covers? | adaptive test s (stages) | fixed estimate | error | fixed CI "
            "| covers? | fixed test s (stages of planned) |")  # fmt: skip
    lines = [head, "|" + "---|" * 13]
    for cfg, apriori, ad, fx in rows:
        n = cfg.instances
        assert ad.truth is not None and fx.truth is not None
        tr = f"{ad.truth_per_instance:.1f} ({ad.truth.rate / n:.1f})"
        if n > 1:
            tr += f" [{ad.truth.low / n:.1f}-{ad.truth.high / n:.1f}]"
        if abs(fx.truth_per_instance - ad.truth_per_instance) > 0.05:
            tr += f"; fixed run: {fx.truth_per_instance:.1f} ({fx.truth.rate / n:.1f})"
        ci = "-" if ad.ci is None else f"{ad.ci[0]:.1f}-{ad.ci[1]:.1f}"
        fci = "-" if fx.ci is None else f"{fx.ci[0]:.1f}-{fx.ci[1]:.1f}"
        planned = fixed_stage_count(apriori.throughput)
        lines.append(
            f"| {cfg.label()} | {cfg.saturation / n:.1f} | {tr} | {fmt(ad.estimate)} "
            f"| {fmt(ad.error and 100 * ad.error, '+.1f')}% | {ci} | {yes_no(ad.covers)} "
            f"| {ad.test_seconds:.0f} ({ad.stages}) | {fmt(fx.estimate)} "
            f"| {fmt(fx.error and 100 * fx.error, '+.1f')}% | {fci} | {yes_no(fx.covers)} "
            f"| {fx.test_seconds:.0f} ({fx.stages} of {planned}) |"
        )
    return "\n".join(lines)


def coverage_table(cfg: Config, runs: list[RunResult]) -> str:
    lines = ["| # | truth | estimate | error | 95% CI | covers? (margin) | test s | stop |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, r in enumerate(runs, 1):
        ci = "-" if r.ci is None else f"{r.ci[0]:.1f}-{r.ci[1]:.1f}"
        lines.append(
            f"| {k} | {r.truth_per_instance:.1f} | {fmt(r.estimate)} "
            f"| {fmt(r.error and 100 * r.error, '+.1f')}% | {ci} "
            f"| {yes_no(r.covers)} ({fmt(r.margin and 100 * r.margin, '+.2f')}%) "
            f"| {r.test_seconds:.0f} | {r.stop_reason} |"
        )
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    # Not `import locust`: it monkey-patches this process with gevent.
    return (f"{os.cpu_count()} vCPU {model}, Python {platform.python_version()}, "
            f"Locust {importlib.metadata.version('locust')}")  # fmt: skip


def runs_root(stack: contextlib.ExitStack, keep: Path | None, prefix: str) -> str:
    """Where a benchmark writes its run directories: `keep` (--keep, to read them again
    later), or a temporary directory the stack removes."""
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        return str(keep)
    return stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="adaptive runs of the first configuration for coverage (>= 1)",
    )
    parser.add_argument("--configs", default=None,
                        help="which configurations, e.g. AC [ABCD; ABC with uniform]")
    parser.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson",
                        help="the arrivals the runs use, and the truth computed for them")
    parser.add_argument("--no-fixed", action="store_true", help="adaptive runs only")
    parser.add_argument("--stage-seconds", type=int, default=None,
                        help="the adaptive runs' stage length [10 with poisson, 6 uniform; "
                             "30, the CLI's, lets the search end stages at its looks]")
    parser.add_argument("--json", type=Path, help="write every figure here")  # fmt: skip
    parser.add_argument("--keep", type=Path,
                        help="keep the run directories here (to analyze them again)")
    args = parser.parse_args(argv)
    global ARRIVALS, STAGE_SECONDS, WARMUP_SECONDS
    ARRIVALS = args.arrivals
    if ARRIVALS == "poisson":
        # A Poisson stage's queue needs longer to settle than a uniform one's (issue 17):
        # 10 s stages with 2 s warm-up, against 6 and 1.
        STAGE_SECONDS, WARMUP_SECONDS = 10, 2
    if args.stage_seconds:
        # The CLI's warm-up for it: 20%, at most 5 s.
        STAGE_SECONDS, WARMUP_SECONDS = args.stage_seconds, min(5, args.stage_seconds // 5)
    names = args.configs or ("ABCD" if ARRIVALS == "poisson" else "ABC")
    configs = [c for c in CONFIGS if c.name in names]
    started = time.monotonic()
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    users = math.ceil(MAX_RPS * max(1.0, 4 * SLO_MS / 1000.0) * 1.2)  # as the runner sizes it
    rows = []
    coverage: list[RunResult] = []
    all_runs: list[RunResult] = []
    with contextlib.ExitStack() as stack:
        tmp = runs_root(stack, args.keep, "bench-accuracy-")
        for ci, cfg in enumerate(configs):
            apriori = truth_for_run(cfg, users, None, 0.0, draws=40)
            print(f"\n{cfg.label()}: N*C/S {cfg.saturation:g} rps; simulated truth "
                  f"{apriori.throughput:.1f} rps (offered {apriori.rate:.1f}; 90% of splits "
                  f"{apriori.low:.1f}-{apriori.high:.1f})")  # fmt: skip
            config = ServerConfig(port=0, instances=cfg.instances, concurrency=cfg.concurrency,
                                  service_time_ms=cfg.service_ms, model="sleep")  # fmt: skip
            with running_server(config) as url:
                runs_here: list[RunResult] = []
                plan = [("adaptive", "")]
                if not args.no_fixed:
                    plan.append(("fixed", ""))
                if ci == 0:
                    plan += [("adaptive", f"-{k}") for k in range(2, args.repeats + 1)]
                for mode, tag in plan:
                    out = Path(tmp) / f"{cfg.name}-{mode}{tag}"
                    out.mkdir()
                    stages = fixed_stage_count(apriori.throughput) if mode == "fixed" else 0
                    r = run_tool(url, cfg, mode, out, stages, tag)
                    counts = r.split if cfg.instances > 1 else None
                    if ARRIVALS == "poisson":
                        r.idle_overhead_ms = calibrated_overhead_ms(cfg, r.stage_table, counts)
                    r.truth = truth_for_run(cfg, r.users, counts, r.overhead_ms)
                    runs_here.append(r)
                    all_runs.append(r)
                    print(f"  {mode:8s}{tag:4s} estimate {fmt(r.estimate)} (truth "
                          f"{r.truth_per_instance:.1f}, {fmt(r.error and 100 * r.error, '+.1f')}%)"
                          f" CI {r.ci and tuple(round(v, 1) for v in r.ci)} covers "
                          f"{yes_no(r.covers)}; {r.test_seconds:.0f}s, {r.stages} stages; "
                          f"split {r.split}; warnings {r.warnings}; machine CPU "
                          f"{fmt(r.machine_cpu_percent, '.0f')}%", flush=True)  # fmt: skip
                ad = runs_here[0]
                fx = ad if args.no_fixed else runs_here[1]
                rows.append((cfg, apriori, ad, fx))
                for r in (ad, fx) if ARRIVALS == "uniform" else ():
                    check = model_check(cfg, r)
                    shown = ", ".join(f"{o:g}: {m:.0f}/{s:.0f}" for o, m, s in check)
                    print(f"  model check {r.mode} (offered rps: measured/simulated p95 ms): "
                          f"{shown or '-'}")  # fmt: skip
                if ci == 0:
                    coverage = [r for r in runs_here if r.mode == "adaptive"]
    print()
    print(table(rows))
    if coverage:
        cfg = configs[0]
        covered = sum(1 for r in coverage if r.covers)
        by_rate = sum(1 for r in coverage if r.covers_rate)
        print(f"\nCoverage, {cfg.label()}, {len(coverage)} adaptive runs:")
        print(coverage_table(cfg, coverage))
        print(f"\n{covered} of {len(coverage)} intervals cover the truth's throughput "
              f"(bar: 90%); {by_rate} of {len(coverage)} cover its offered rate.")  # fmt: skip
        errs = [100 * r.error for r in coverage if r.error is not None]
        if errs:
            print(f"error: median {statistics.median(errs):+.1f}%, "
                  f"range {min(errs):+.1f}% to {max(errs):+.1f}%")  # fmt: skip
    for cfg, _, ad, fx in rows:
        print(f"{cfg.name}: adaptive {ad.test_seconds:.0f}s vs fixed {fx.test_seconds:.0f}s "
              f"({ad.test_seconds / fx.test_seconds:.0%}); adaptive stop: {ad.stop_reason}; "
              f"fixed bracket {fx.bracket}")  # fmt: skip
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"benchmark took {(time.monotonic() - started) / 60:.1f} min")  # fmt: skip
    if args.json:

        def enc(r: RunResult) -> dict[str, Any]:
            return {**asdict(r), "error": r.error, "covers": r.covers,
                    "covers_rate": r.covers_rate, "margin": r.margin,
                    "overhead_ms": r.overhead_ms}  # fmt: skip

        args.json.write_text(json.dumps({"runs": [enc(r) for r in all_runs],
                                         "apriori": {c.name: asdict(a) for c, a, _, _ in rows}},
                                        indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
