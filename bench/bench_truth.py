"""Issue 27: the randomized truth benchmark, the arbiter of every rule of the search.

    .venv/bin/python bench/bench_truth.py [--configs 30] [--seed S] [--max-rps 400]
        [--max-seconds 1200] [--habits none|real|P] [--json out.json] [--keep DIR]

Draws configurations of `recommender serve --model sleep` at random, from a fresh seed each
run (printed; `--seed` replays the same draws): instances N 1-4 (weighted to 1-2), slots C
1-32, service time S 2-500 ms log-uniform, its law det, exp or lognormal:0.5 (`serve
--service-time-dist`: each request's slot time drawn with mean S), an SLO percentile from
p50, p90, p95, p99, p99.9 and its limit U(1.2, 20) x S. A draw is rejected (and another
drawn) when its saturation N x C / S exceeds `--max-rps`, or when its truth with a nominal
2 ms outside the slot is under 2 rps (nothing to find there). Conditioned on
those, the draws lean to long service times (many slots of a short one saturate past
`--max-rps`).

`--max-rps` 400 by default: what one Locust process on this machine (2 vCPU, shared with the
server under test) drives comfortably. Flat out one process reaches about 6,000 req/s
(bench/README.md, bench_scale), but paced Poisson arrivals from hundreds of users, with the
server's instances on the same two cores, make the generator late long before that; 400 rps
(the probe at 1.3 x 400 = 520) is the bound assumed here, not measured by this script. What
measures it is the table: each run's generator lateness per stage (p95 of how late sends
left, `generator.stages[].lag_p95_ms` of `run --json`) and whether the search stopped on
`generator_late`. A lateness that grows with the configuration's saturation says where the
machine's limit is; lower `--max-rps` below it.

For each configuration it starts the server (max queue 1000 per instance, seeded draws),
times it at a trickle (100 requests one at a time, recommender.local.trickle: the slot
times it reports and the time outside the slot), and computes the TRUTH: the highest
Poisson rate at which N instances, each an M/G/c queue fed 1/N of the stream, keep the SLO
percentile of latency within the limit (recommender.queueing.empirical_poisson_capacity),
every request also spending the trickle's typical (median) time outside its slot. Its
service times are the trickle's own for det (the machine's: a slot held past S shows there),
and for exp and lognormal 100,000 or more draws of the law (100 trickled draws would make
the tail of the law, what a p99.9 rests on, a matter of luck; the trickle's slot times are
those draws exactly, nothing of the machine). `truth_trickle` beside it is the truth from the
100 trickled slot times, to see that luck.

Then it runs `recommender run --url ... --yes --json --out <tmp>` with the CLI's DEFAULT
flags except `--slo` (the drawn one) and `--max-rps` (1.3 x saturation; and `--start-rps`
half of that where it is under the default 10, which the CLI would refuse), and records the
truth, the estimate, its interval and whether it covers the truth, the error, the wall
time, the stages played, the verdict, the generator's lateness per stage, whether the run
stopped on `generator_late`, and the share of the requests each instance served
(`instance_share`, from the server's /stats before and after the run). Without `--instances`
the run's figures are the whole server's, compared with the whole server's truth (the error
and coverage are the same per instance).

Two truths for N > 1. `truth_rps` (with `error_pct`, `covered`) assumes each instance gets
1/N of the requests. It is not the truth of the server the run loaded: the kernel spreads
connections, not requests, over the instances (SO_REUSEPORT), and each Locust user keeps its
connection, so the instances get uneven shares, the busiest saturates first and fills the
tail. `truth_split` (with `error_split`, `covers_split`) is the truth for the shares the run
recorded: instance i an M/G/c queue fed a Poisson stream of share_i x the rate, the SLO
percentile read over all requests together (recommender.queueing.split_poisson_capacity;
same service times, time outside the slot and samples as `truth_rps`). The split truth is
the ARBITER: it is what the run could have found. For N = 1 the two are the same number.
The 1/N figures stay beside it to show how much the uneven spread moved the truth.

Real server habits (`--habits real`, or a probability P per configuration; `none` by
default). A configuration with habits runs its server with `serve --keepalive-s K`, K
U(1, 5) s (idle keep-alive connections closed, as gunicorn, uvicorn or a load balancer close
them), and `--overlap a`, a U(0, 0.5) (a slot held x (1 + a x (busy - 1) / C), busy the
slots held at its start: recommender.local.server). Its truths (`truth_rps`, `truth_trickle`,
`truth_split`) are computed with the same overlap (the trickle's times are unstretched, one
request at a time, and the simulation stretches them itself: recommender.local.trickle), and
its saturation, the probe and the `sat` column are N x C / (S x (1 + a (C - 1) / C)); the
keep-alive timeout changes no truth. The habits are drawn from their own stream of the
seed, three numbers per configuration whatever P (whether, K, a), after and apart from the
configurations: a seed draws the same configurations with habits as without (the rejection
of draws is the one without habits; a configuration whose truth the overlap puts under
2 rps is skipped when run), and earlier seeds replay as before. Each result records them
(`draw.keepalive_s`, `draw.overlap`, shown after the law), the run's `reconnects` (sends made
again after a kept-alive connection closed, run.json `totals`) and `close_errors`: requests
the run counted as errors of a kind a connection close makes (HTTPConnectionClosed, resets,
broken pipes). The load generator sends such a request again, as botocore does, so any is a
failure of the check (counted per run in the summary), whether or not the estimate is right.

A run past `--max-seconds` is interrupted (SIGINT, as Ctrl-C) and recorded as such.
Not a test, and not for a busy machine: it takes minutes per configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recommender import runs
from recommender.errors import RecommenderError
from recommender.local.process import running_server, stop_group
from recommender.local.server import ServerConfig
from recommender.local.service_time import ServiceTimeDist
from recommender.local.trickle import measure_trickle
from recommender.queueing import (
    EMPIRICAL_SAMPLES,
    empirical_poisson_capacity,
    mgc_latency_ms,
    split_poisson_capacity,
)

sys.path.insert(0, str(Path(__file__).parent))
from bench_accuracy import runs_root  # noqa: E402

INSTANCES, INSTANCE_WEIGHTS = (1, 2, 3, 4), (0.35, 0.35, 0.15, 0.15)
SLOTS = (1, 32)
SERVICE_MS = (2.0, 500.0)  # log-uniform
LAWS = ("det", "exp", "lognormal:0.5")
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
LIMIT_X = (1.2, 20.0)  # the limit, x S
MIN_TRUTH_RPS = 2.0
NOMINAL_OUTSIDE_MS = 2.0  # HTTP and client time outside the slot, for rejecting draws
TRICKLE = 100
MAX_QUEUE = 1000  # per instance: the probe at 1.3 x saturation queues rather than 503s
PROBE_X = 1.3  # --max-rps, x saturation
DEFAULT_START_RPS = 10.0  # the CLI's --start-rps
INTERRUPT_GRACE_S = 120.0  # after SIGINT: the run analyses what it has, then exits
KEEPALIVE_S = (1.0, 5.0)  # --habits: the idle keep-alive timeout, U(lo, hi) s
OVERLAP = (0.0, 0.5)  # --habits: the overlap a, U(lo, hi)
HABITS_STREAM = 2  # the habits' RNG stream: [seed, 2] (the configurations' is the seed itself)
# Error kinds a connection's close makes (recommender.loadgen.recorder.error_kind: the
# exception's name); a kept-alive connection's close is sent again, never one of these.
CLOSE_KINDS = frozenset({"HTTPConnectionClosed", "ConnectionResetError", "BrokenPipeError",
                         "ConnectionAbortedError", "RemoteDisconnected"})  # fmt: skip
ARBITER = ("truth_split: the truth for the instance shares the run recorded (the server as "
           "the run loaded it); truth_rps assumes 1/N each and is the same for N = 1")  # fmt: skip


@dataclass(frozen=True)
class Draw:
    """One drawn configuration; `server_seed` seeds its server's service times;
    `keepalive_s` and `overlap` its server's habits (`--habits`: None and 0 without)."""

    index: int
    instances: int
    slots: int
    service_ms: float
    law: str
    quantile: float
    limit_ms: float
    server_seed: int
    keepalive_s: float | None = None
    overlap: float = 0.0

    @property
    def saturation_rps(self) -> float:
        """N x C / S, every slot busy: stretched by the overlap, N x C / (S x (1 + a (C -
        1) / C)), as the server's capacity_rps."""
        stretch = 1.0 + self.overlap * (self.slots - 1) / self.slots
        return self.instances * self.slots / (self.service_ms / 1000.0 * stretch)

    def habits(self) -> str:
        """The habits, as the label and the table show them ("" without)."""
        keepalive = "" if self.keepalive_s is None else f" keep-alive {self.keepalive_s:g}s"
        overlap = f" overlap {self.overlap:g}" if self.overlap else ""
        return keepalive + overlap

    @property
    def slo(self) -> str:
        return f"p{self.quantile * 100:g}<={self.limit_ms:g}ms"

    def label(self) -> str:
        return (f"#{self.index} {self.instances}x{self.slots} S={self.service_ms:g}ms "
                f"{self.law}{self.habits()} {self.slo}")  # fmt: skip


@dataclass
class TruthResult:
    """What one configuration's run found, beside its truth (whole server, rps): `truth_rps`
    with its instances fed 1/N each, `truth_split` (the arbiter) with the shares the run
    recorded in `instance_share`; `error_*` in percent of each, `covered`/`covers_split`
    whether the interval holds each."""

    draw: Draw
    saturation_rps: float
    truth_rps: float
    truth_trickle_rps: float
    trickle: str
    slot_mean_ms: float
    outside_ms: float
    max_rps: float
    start_rps: float
    estimate_rps: float | None = None
    interval_rps: list[float] | None = None
    method: str | None = None
    covered: bool | None = None
    error_pct: float | None = None
    truth_split: float | None = None
    error_split: float | None = None
    covers_split: bool | None = None
    wall_s: float = 0.0
    stages: int = 0
    verdict: str | None = None
    exit_code: int | None = None
    status: str | None = None
    stop: str | None = None
    stopped_late: bool = False
    timed_out: bool = False
    lag_p95_ms: list[float | None] = field(default_factory=list)
    instance_share: list[float] = field(default_factory=list)
    reconnects: int | None = None  # run.json totals: sent again after a keep-alive close
    close_errors: int | None = None  # requests counted as errors of a close's kind: a failure
    problem: str | None = None

    def texts(self) -> tuple[str, str, str, str, list[float]]:
        """The interval, the errors (1/N and split), the split truth as printed ("-": none),
        and the stages' lateness p95s that were recorded: for the line and the table."""
        ci = ("-" if not self.interval_rps else
              f"{self.interval_rps[0]:.1f}-{self.interval_rps[1]:.1f}")  # fmt: skip
        err = "-" if self.error_pct is None else f"{self.error_pct:+.1f}%"
        err_split = "-" if self.error_split is None else f"{self.error_split:+.1f}%"
        split = "-" if self.truth_split is None else f"{self.truth_split:.1f}"
        return ci, err, err_split, split, [x for x in self.lag_p95_ms if x is not None]

    def line(self) -> str:
        if self.problem:
            return f"{self.draw.label()}: {self.problem}"
        ci, err, err_split, split, lags = self.texts()
        return (f"{self.draw.label()} sat {self.saturation_rps:.1f}: truth split {split} "
                f"(shares {shares_text(self.instance_share)}; 1/N {self.truth_rps:.1f}, trickle "
                f"{self.truth_trickle_rps:.1f}) estimate {self.estimate_rps or 0:.1f} [{ci}] "
                f"covers split {self.covers_split} (1/N {self.covered}) error split "
                f"{err_split} (1/N {err}) | "
                f"{self.wall_s:.0f} s, {self.stages} stages, {self.verdict}, stop {self.stop}"
                f"{' (timed out)' if self.timed_out else ''}, lag p95 max "
                f"{max(lags, default=math.nan):.1f} ms{self.closes()}")  # fmt: skip

    def closes(self) -> str:
        """The keep-alive closes, where there were some: sent again, and counted as errors
        (a failure of the check)."""
        again = f", {self.reconnects} sent again" if self.reconnects else ""
        failed = (f", FAILED: {self.close_errors} connection closes counted as errors"
                  if self.close_errors else "")  # fmt: skip
        return again + failed


def shares_text(shares: list[float]) -> str:
    return "/".join(f"{x:.2f}" for x in shares) or "-"


def truth_samples(quantile: float) -> int:
    """Simulated requests per rate: at least 200 beyond the quantile, so a p99.9 is not
    the luck of a few."""
    return max(EMPIRICAL_SAMPLES, int(200 / (1.0 - quantile)))


def law_times_ms(d: Draw, size: int) -> NDArray[np.float64]:
    """`size` service times of the draw's law (seeded by the draw, so a replay agrees)."""
    rng = np.random.default_rng([d.server_seed, 1])
    return ServiceTimeDist.parse(d.law).draw(rng, d.service_ms, size)


def has_truth(d: Draw) -> bool:
    """Whether the truth with a nominal time outside the slot reaches MIN_TRUTH_RPS, before
    any server is started (the truth's queue is monotone in the rate, so one look at that
    rate answers it): most rejected draws miss the limit on their service time alone, and
    need no simulation; the rest need 20,000 simulated requests, not a bisection."""
    service = law_times_ms(d, 20_000)
    idle = float(np.quantile(service, d.quantile)) + NOMINAL_OUTSIDE_MS
    if idle > d.limit_ms:
        return False
    lat = mgc_latency_ms(MIN_TRUTH_RPS / d.instances, d.slots, service,
                         np.array([NOMINAL_OUTSIDE_MS]), samples=20_000)  # fmt: skip
    return float(np.quantile(lat, d.quantile, method="inverted_cdf")) <= d.limit_ms


def draw_configs(seed: int, count: int, max_rps: float, habits: float = 0.0) -> list[Draw]:
    """`count` configurations from `seed`, each within `max_rps` and with a nominal truth
    of at least MIN_TRUTH_RPS. The same seed draws the same list on any machine; `habits`
    is the probability that a configuration runs with real server habits (`with_habits`),
    which leaves the configurations themselves as they are."""
    rng = np.random.default_rng(seed)
    out: list[Draw] = []
    for _ in range(10_000 * max(count, 1)):
        if len(out) == count:
            break
        service = float(np.exp(rng.uniform(math.log(SERVICE_MS[0]), math.log(SERVICE_MS[1]))))
        d = Draw(
            index=len(out) + 1,
            instances=int(rng.choice(INSTANCES, p=INSTANCE_WEIGHTS)),
            slots=int(rng.integers(SLOTS[0], SLOTS[1] + 1)),
            service_ms=round(service, 2),
            law=LAWS[int(rng.integers(len(LAWS)))],
            quantile=QUANTILES[int(rng.integers(len(QUANTILES)))],
            limit_ms=round(float(rng.uniform(*LIMIT_X)) * service, 1),
            server_seed=int(rng.integers(2**31)),
        )
        if d.saturation_rps <= max_rps and has_truth(d):
            out.append(d)
    else:
        raise RuntimeError(f"could not draw {count} configurations within {max_rps} rps")
    return with_habits(seed, out, habits) if habits > 0 else out


def with_habits(seed: int, draws: list[Draw], probability: float) -> list[Draw]:
    """`draws`, each with real server habits with `probability`: a keep-alive timeout
    U(KEEPALIVE_S) s and an overlap U(OVERLAP). From their own stream of the seed, three
    numbers per draw whatever the probability, so the configurations' stream is untouched
    and a draw's habits are the same at any probability that gives it some."""
    rng = np.random.default_rng([seed, HABITS_STREAM])
    out = []
    for d in draws:
        u, keepalive, overlap = rng.uniform(), rng.uniform(*KEEPALIVE_S), rng.uniform(*OVERLAP)
        out.append(replace(d, keepalive_s=round(float(keepalive), 1),
                           overlap=round(float(overlap), 3)) if u < probability else d)  # fmt: skip
    return out


def parse_habits(text: str) -> float:
    """`--habits`: none (0), real (1), or a probability per configuration."""
    named = {"none": 0.0, "real": 1.0}
    try:
        p = named[text] if text in named else float(text)
    except ValueError:
        p = math.nan
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"--habits takes none, real or a probability in "
                                         f"[0, 1], not {text!r}")  # fmt: skip
    return p


def server_config(d: Draw) -> ServerConfig:
    """The draw's server: its law, seeded, a deep queue, and its habits."""
    return ServerConfig(port=0, instances=d.instances, concurrency=d.slots,
                        service_time_ms=d.service_ms, model="sleep", max_queue=MAX_QUEUE,
                        service_time_dist=d.law, seed=d.server_seed, keepalive_s=d.keepalive_s,
                        overlap=d.overlap)  # fmt: skip


def truths(d: Draw, slot_ms: NDArray[np.float64], outside_ms: NDArray[np.float64],
           samples: int) -> tuple[float, float, NDArray[np.float64]]:  # fmt: skip
    """The 1/N truth, the truth from the trickled slot times alone, and the service times
    the first was computed from (the trickle's for det, the law's draws otherwise), each
    with the draw's overlap: the trickle's times are unstretched (one request at a time)."""
    by_trickle = empirical_poisson_capacity(d.instances, d.slots, slot_ms, d.quantile,
                                            d.limit_ms, outside_ms, samples,
                                            overlap=d.overlap)  # fmt: skip
    if d.law == "det":
        return by_trickle, by_trickle, slot_ms
    service = law_times_ms(d, samples)
    truth = empirical_poisson_capacity(d.instances, d.slots, service, d.quantile, d.limit_ms,
                                       outside_ms, samples, overlap=d.overlap)  # fmt: skip
    return truth, by_trickle, service


def run_config(d: Draw, out: Path, max_seconds: float) -> TruthResult:
    """Start the draw's server, time it at a trickle, compute its truth, run `recommender
    run` against it with the default flags (but --slo and --max-rps), and compare."""
    server = server_config(d)
    saturation = d.saturation_rps
    max_rps = float(f"{PROBE_X * saturation:.4g}")
    start_rps = min(DEFAULT_START_RPS, max_rps / 2)
    with running_server(server) as url:
        trickle = measure_trickle(url, TRICKLE)
        outside = np.array([trickle.outside_typical_ms])
        samples = truth_samples(d.quantile)
        slot = np.asarray(trickle.slot_ms)
        truth, by_trickle, service = truths(d, slot, outside, samples)
        r = TruthResult(d, saturation, truth, by_trickle, trickle.describe(),
                        float(slot.mean()), trickle.outside_typical_ms, max_rps,
                        start_rps)  # fmt: skip
        if truth < MIN_TRUTH_RPS:
            r.problem = (f"skipped: its truth on this machine is {truth:.2f} rps (time outside "
                         f"the slot {trickle.outside_typical_ms:.1f} ms)")  # fmt: skip
            return r
        before = instance_counts(url, d.instances)
        args = ["run", "--url", f"{url}/invocations", "--slo", d.slo, "--max-rps", f"{max_rps:g}",
                "--yes", "--json", "--out", str(out)]  # fmt: skip
        if start_rps < DEFAULT_START_RPS:
            args += ["--start-rps", f"{start_rps:g}"]
        t = time.monotonic()
        doc, r.timed_out, r.exit_code = _run_tool(args, out / "run.log", max_seconds)
        r.wall_s = time.monotonic() - t
        served = np.subtract(instance_counts(url, d.instances), before)
        r.instance_share = [round(float(x), 3) for x in served / max(1, served.sum())]
    _read_run(r, doc, out)
    judge_split(r, service, outside, samples)
    return r


def judge_split(r: TruthResult, service_ms: NDArray[np.float64], outside_ms: NDArray[np.float64],
                samples: int) -> None:  # fmt: skip
    """Fill in the arbiter: `truth_split`, the truth for the shares of the requests the run's
    instances served (`instance_share`), from the same service times, time outside the slot
    and samples as `truth_rps`; and the estimate's error and coverage against it. Nothing
    when no instance served a request (no run). One instance: the 1/N truth, the same
    number (split_poisson_capacity of one share is empirical_poisson_capacity of one).
    With the draw's overlap, as the 1/N truth."""
    if not sum(r.instance_share) > 0:
        return
    d = r.draw
    r.truth_split = (r.truth_rps if len(r.instance_share) == 1 else
                     split_poisson_capacity(r.instance_share, d.slots, service_ms, d.quantile,
                                            d.limit_ms, outside_ms, samples,
                                            overlap=d.overlap))  # fmt: skip
    if r.interval_rps is not None:
        r.covers_split = r.interval_rps[0] <= r.truth_split <= r.interval_rps[1]
    if r.estimate_rps and r.truth_split > 0:
        r.error_split = (r.estimate_rps / r.truth_split - 1.0) * 100.0


def instance_counts(base_url: str, instances: int) -> list[int]:
    """Requests each instance has answered so far (served and 503): /stats over fresh
    connections until every instance has answered (the kernel picks one per connection).
    http.client, not urllib: no proxy from the environment between us and 127.0.0.1."""
    host, _, port = base_url.removeprefix("http://").rpartition(":")
    seen: dict[int, int] = {}
    for _ in range(200 * instances):
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", "/stats")
            data = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        seen[int(data["instance"])] = int(data["served"]) + int(data["rejected_503"])
        if len(seen) == instances:
            return [seen[i] for i in range(instances)]
    raise RecommenderError(f"only instances {sorted(seen)} of {instances} answered /stats")


def _run_tool(args: list[str], log: Path, max_seconds: float
              ) -> tuple[dict[str, Any] | None, bool, int]:  # fmt: skip
    """`recommender run` in its own process group (so a run past `max_seconds` can be
    interrupted as Ctrl-C would, Locust included): its --json document, whether it timed
    out, its exit code. Its progress goes to `log`."""
    cmd = [sys.executable, "-m", "recommender", *args]
    timed_out = False
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)  # fmt: skip
        try:
            stdout, _ = proc.communicate(timeout=max_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGINT)
            try:
                stdout, _ = proc.communicate(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                stop_group(proc)
                stdout, _ = proc.communicate()
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        doc = None
    return doc, timed_out, int(proc.returncode)


def _read_run(r: TruthResult, doc: dict[str, Any] | None, out: Path) -> None:
    """Fill in what the run's --json document and its run directory say."""
    if doc is None:
        tail = (out / "run.log").read_text(errors="replace").strip().splitlines()[-3:]
        r.problem = f"no result (exit {r.exit_code}): {' | '.join(tail) or 'no output'}"
        return
    cap = doc["capacity"]
    n = int(cap.get("instances") or 1)  # 1: the run was not told the instances
    r.verdict, r.status, r.method = doc.get("verdict"), doc.get("status"), cap.get("method")
    per = cap.get("rps_per_instance")
    r.estimate_rps = None if per is None else float(per) * n
    ci = cap.get("interval_rps_per_instance")
    r.interval_rps = None if not ci else [float(ci[0]) * n, float(ci[1]) * n]
    if r.interval_rps is not None:
        r.covered = r.interval_rps[0] <= r.truth_rps <= r.interval_rps[1]
    if r.estimate_rps:
        r.error_pct = (r.estimate_rps / r.truth_rps - 1.0) * 100.0
    r.lag_p95_ms = [s.get("lag_p95_ms") for s in doc.get("generator", {}).get("stages", [])]
    meta = json.loads((Path(doc["run_dir"]) / runs.RUN_FILE).read_text())
    totals = meta.get("totals")
    if totals is not None:
        r.reconnects = int(totals.get("reconnects", 0))
        kinds = totals.get("errors_by_kind") or {}
        r.close_errors = sum(int(n) for kind, n in kinds.items() if kind in CLOSE_KINDS)
    r.stages = sum(1 for s in meta.get("stages", []) if s["rps"] > 0)
    decisions = meta.get("search", {}).get("decisions", [])
    r.stop = decisions[-1].get("code") if decisions else None
    r.stopped_late = r.stop == "generator_late"


def against(results: list[TruthResult], error: str, covered: str) -> dict[str, Any]:
    """Median |error|, the worst error, coverage, against one truth: the result's attributes
    named `error` (percent) and `covered`."""
    errs = [(r, getattr(r, error)) for r in results if getattr(r, error) is not None]
    errors = [e for _, e in errs]
    # A run the generator could not drive (or cut short) says so rather than err: its lower
    # bound is kept apart, so the machine's limit does not pass for the search's error.
    driven = [e for r, e in errs if not (r.stopped_late or r.timed_out)]
    judged = [getattr(r, covered) for r in results if getattr(r, covered) is not None]
    worst = max(errors, key=abs, default=None)
    return {
        "estimates": len(errors),
        "median_abs_error_pct": statistics.median(abs(e) for e in errors) if errors else None,
        "worst_error_pct": worst,
        "worst_config": next((r.draw.index for r, e in errs if e == worst), None),
        "median_abs_error_pct_driven": statistics.median(abs(e) for e in driven)
        if driven else None,
        "driven": len(driven),
        "coverage_pct": 100.0 * sum(map(bool, judged)) / len(judged) if judged else None,
        "with_interval": len(judged),
    }


def summary(results: list[TruthResult]) -> dict[str, Any]:
    """Against each truth (the 1/N one's keys as before; the split one's, the arbiter's, with
    `_split` after `error`, `coverage` or the key): median |error|, the worst error,
    coverage; then median wall time, and what went wrong."""
    walls = [r.wall_s for r in results if not r.problem]
    split = against(results, "error_split", "covers_split")
    return {
        "configs": len(results),
        "arbiter": ARBITER,
        **against(results, "error_pct", "covered"),
        **{(k.replace("_pct", "_split_pct") if "_pct" in k else f"{k}_split"): v
           for k, v in split.items()},  # fmt: skip
        "median_wall_s": statistics.median(walls) if walls else None,
        "stopped_generator_late": sum(r.stopped_late for r in results),
        "timed_out": sum(r.timed_out for r in results),
        "problems": sum(r.problem is not None for r in results),
        "with_habits": sum(bool(r.draw.habits()) for r in results),
        "reconnects": sum(r.reconnects or 0 for r in results),
        "runs_with_close_errors": sum(bool(r.close_errors) for r in results),
    }


def table(results: list[TruthResult]) -> str:
    """One row per configuration: the split truth (the arbiter) and its error and coverage
    first, the 1/N truth's beside them."""
    rows = ["| # | N x C | S ms | law | SLO | sat | shares | truth split | truth 1/N | estimate "
            "| interval | covers split | covers 1/N | error split | error 1/N | wall s | stages "
            "| verdict | stop | lag p95 max ms |",
            "|" + "---|" * 20]
    for r in results:
        d = r.draw
        ci, err, err_split, split, lags = r.texts()
        lag = "-" if not lags else f"{max(lags):.1f}"
        rows.append(f"| {d.index} | {d.instances}x{d.slots} | {d.service_ms:g} | "
                    f"{d.law}{d.habits()} "
                    f"| {d.slo} | {r.saturation_rps:.1f} | {shares_text(r.instance_share)} | "
                    f"{split} | {r.truth_rps:.1f} | "
                    f"{'-' if r.estimate_rps is None else f'{r.estimate_rps:.1f}'} | {ci} | "
                    f"{'-' if r.covers_split is None else r.covers_split} | "
                    f"{'-' if r.covered is None else r.covered} | {err_split} | {err} | "
                    f"{r.wall_s:.0f} | "
                    f"{r.stages} | {r.verdict or r.problem or '-'} | "
                    f"{r.stop}{' (timed out)' if r.timed_out else ''}{r.closes()} | "
                    f"{lag} |")  # fmt: skip
    return "\n".join(rows)


def format_summary(s: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}%"

    def versus(x: str) -> str:  # one truth's figures: x is "" (1/N) or "_split"
        worst = s[f"worst_error{x}_pct"]
        worst_text = "-" if worst is None else f"{worst:+.1f}% (#{s[f'worst_config{x}']})"
        return (f"{s[f'estimates{x}']} estimates: median |error| "
                f"{pct(s[f'median_abs_error{x}_pct'])}, worst {worst_text}, coverage "
                f"{pct(s[f'coverage{x}_pct'])} of {s[f'with_interval{x}']} intervals; "
                f"median |error| {pct(s[f'median_abs_error{x}_pct_driven'])} over the "
                f"{s[f'driven{x}']} runs neither late nor timed out")  # fmt: skip

    wall = "-" if s["median_wall_s"] is None else f"{s['median_wall_s']:.0f} s"
    closes = s.get("runs_with_close_errors", 0)
    habits = ("" if not (s.get("with_habits") or s.get("reconnects") or closes) else
              f".\n{s['with_habits']} with real server habits: {s['reconnects']} sends made "
              f"again after a keep-alive close; {closes} runs counted a connection close as "
              f"an error{' (FAILED: the generator must send those again)' if closes else ''}")
    return (f"{s['configs']} configurations, median wall {wall}.\n"
            f"Against the split truth (the arbiter: the instances' shares as the run loaded "
            f"them): {versus('_split')}.\n"
            f"Against the 1/N truth (each instance 1/N; the same for N = 1): {versus('')}.\n"
            f"{s['stopped_generator_late']} stopped on generator_late, {s['timed_out']} "
            f"timed out, {s['problems']} without a result{habits}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", type=int, default=30, help="configurations to draw [30]")
    p.add_argument("--seed", type=int, default=None, help="replay a run's draws [fresh]")
    p.add_argument("--max-rps", type=float, default=400.0,
                   help="the highest saturation drawn: what one Locust process drives here")
    p.add_argument("--max-seconds", type=float, default=1200.0,
                   help="wall seconds per run before it is interrupted [1200]")
    p.add_argument("--habits", type=parse_habits, default=0.0, metavar="none|real|P",
                   help="real server habits (keep-alive timeout, overlap) for every "
                        "configuration (real) or each with probability P [none]")
    p.add_argument("--json", type=Path, help="write every result and the summary here")
    p.add_argument("--keep", type=Path, help="keep the run directories here")
    a = p.parse_args(argv)
    seed = a.seed if a.seed is not None else secrets.randbits(32)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} vCPU, load "
          f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; seed {seed} (replay: "
          f"--seed {seed}), --max-rps {a.max_rps:g}, --habits {a.habits:g}",
          flush=True)  # fmt: skip
    draws = draw_configs(seed, a.configs, a.max_rps, a.habits)
    results: list[TruthResult] = []
    with contextlib.ExitStack() as stack:
        root = Path(runs_root(stack, a.keep, "bench-truth-"))
        for d in draws:
            out = root / f"config-{d.index}"
            out.mkdir(parents=True, exist_ok=True)
            print(f"{d.label()} (saturation {d.saturation_rps:.1f} rps)...", flush=True)
            try:
                r = run_config(d, out, a.max_seconds)
            except RecommenderError as exc:  # the server did not start or answer: go on
                r = TruthResult(d, d.saturation_rps, math.nan, math.nan, "", math.nan,
                                math.nan, math.nan, math.nan, problem=exc.one_line())
            print(f"  {r.trickle}\n  {r.line()}", flush=True)
            results.append(r)
            if a.json:  # after each: a run cut short (hours long) keeps what it measured
                write_json(a.json, seed, a, results)
    print("\n" + table(results) + "\n\n" + format_summary(summary(results)))
    return 0


def write_json(path: Path, seed: int, a: argparse.Namespace, results: list[TruthResult]) -> None:
    """Every result so far and their summary, as --json gives them."""
    path.write_text(json.dumps({"seed": seed, "max_rps": a.max_rps,
                                "max_seconds": a.max_seconds, "habits": a.habits,
                                "arbiter": ARBITER, "configs": a.configs,
                                "results": [asdict(r) for r in results],
                                "summary": summary(results)}, indent=1))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
