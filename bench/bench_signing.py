"""What SigV4 signing costs the load generator: requests/s of one Locust process, and
requests per CPU-second of that process, for three user classes driving the local server
flat out (no wait time):

    (a) unsigned  FastHttpUser POSTing to /invocations
    (b) signed    FastHttpUser signing each request with recommender.loadgen.sigv4 (the
                  production path), POSTing to /endpoints/bench/invocations
    (c) boto3     one boto3 sagemaker-runtime client per user, invoke_endpoint

    .venv/bin/python bench/bench_signing.py

Each class runs as its own `locust --headless` subprocess (bench/locust_signing.py), one
after the other, ROUNDS times interleaved (a, b, c, a, b, c, ...), against one
`recommender serve --model sleep` with a service time of ~0. The Locust process measures a
steady window itself (after every user has spawned and a warm-up): requests, failures and
its own CPU seconds (psutil). On a 2-core machine the server and Locust share the cores, so
req/s may be capped by the server; requests per Locust CPU-second is the robust comparison.
Prints medians; exits 1 when a class had failures (a broken setup, not a measurement).
Not a test: the figures go in bench/README.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from recommender.local.process import running_server
from recommender.local.server import ServerConfig

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locust_signing.py"
CLASSES = {"unsigned": "UnsignedUser", "signed": "SignedUser", "boto3": "Boto3User"}
ROUNDS = 3
USERS = 64
WARMUP_S = 2.0
MEASURE_S = 10.0
MAX_FAILURE_RATE = 0.001
# The server's service time must be positive; 1 µs is none at all next to HTTP handling.
SERVER = ServerConfig(
    port=0, instances=2, concurrency=256, service_time_ms=0.001, model="sleep", max_queue=1024
)
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never read the user's own profiles or reach for instance metadata.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class Sample:
    rps: float
    per_cpu_s: float  # requests per CPU-second of the Locust process
    cpu_util: float  # the Locust process's CPU seconds per second (1.0 = one core)
    server_util: float  # the server's CPU seconds per second, all instances
    other_util: float  # the rest of the machine's busy CPU seconds per second: other work
    failures: int  # over the whole run, warm-up included
    requests: int


def server_pids() -> str:
    """The `recommender serve` process and its instances: our only children so far."""
    return ",".join(str(p.pid) for p in psutil.Process().children(recursive=True))


def run_once(kind: str, base_url: str, workdir: Path, server: str, retries: int = 1) -> Sample:
    out = workdir / f"{kind}-{time.monotonic_ns()}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_AWS, BENCH_OUT=str(out), BENCH_WARMUP_S=str(WARMUP_S),
               BENCH_MEASURE_S=str(MEASURE_S), BENCH_SERVER_PIDS=server)  # fmt: skip
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), CLASSES[kind],
        "--headless", "--host", base_url, "-u", str(USERS), "-r", str(USERS),
        "--run-time", "60s", "--loglevel", "WARNING", "--only-summary",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    if not out.exists():
        # Stopped before its window ended: on a shared machine someone may have killed it.
        tail = (proc.stdout + proc.stderr)[-3000:]
        what = f"{kind}: Locust wrote no result (exit {proc.returncode})"
        if retries > 0:
            print(f"  {what}; running it again", file=sys.stderr, flush=True)
            return run_once(kind, base_url, workdir, server, retries - 1)
        raise SystemExit(f"{what}:\n{tail}")
    r = json.loads(out.read_text())
    if r["errors"]:
        for what, n in r["errors"].items():
            print(f"  {kind}: {n} x {what}", file=sys.stderr)
    return Sample(
        rps=r["requests"] / r["seconds"],
        per_cpu_s=r["requests"] / r["cpu_s"],
        cpu_util=r["cpu_s"] / r["seconds"],
        server_util=r["server_cpu_s"] / r["seconds"],
        other_util=(r["machine_busy_s"] - r["cpu_s"] - r["server_cpu_s"]) / r["seconds"],
        failures=r["total_failures"],
        requests=r["total_requests"],
    )


def main() -> int:
    started = time.monotonic()
    results: dict[str, list[Sample]] = {k: [] for k in CLASSES}
    with tempfile.TemporaryDirectory() as tmp, running_server(SERVER) as base_url:
        server = server_pids()
        for round_ in range(1, ROUNDS + 1):
            for kind in CLASSES:
                s = run_once(kind, base_url, Path(tmp), server)
                results[kind].append(s)
                print(f"round {round_} {kind:8s} {s.rps:6.0f} req/s {s.per_cpu_s:6.0f} req/CPU-s"
                      f"  CPU: Locust {s.cpu_util:4.2f} server {s.server_util:4.2f}"
                      f" other {s.other_util:4.2f}  failures {s.failures}/{s.requests}",
                      flush=True)  # fmt: skip

    med = {
        k: (
            statistics.median(s.rps for s in v),
            statistics.median(s.per_cpu_s for s in v),
            statistics.median(s.cpu_util for s in v),
            statistics.median(s.server_util for s in v),
            statistics.median(s.other_util for s in v),
        )
        for k, v in results.items()
    }
    print()
    print(f"{psutil.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{USERS} users, {MEASURE_S:g} s window, median of {ROUNDS}, "
          f"total {time.monotonic() - started:.0f} s")  # fmt: skip
    print("CPU columns: cores busy in the window (Locust process, server, everything else)")
    print(f"{'class':10s} {'req/s':>8s} {'req/CPU-s':>10s} {'Locust':>7s} {'server':>7s} "
          f"{'other':>6s} {'failures/requests':>18s}")  # fmt: skip
    for kind, (rps, per_cpu, util, server_util, other) in med.items():
        fails = sum(s.failures for s in results[kind])
        reqs = sum(s.requests for s in results[kind])
        print(f"{kind:10s} {rps:8.0f} {per_cpu:10.0f} {util:7.2f} {server_util:7.2f} "
              f"{other:6.2f} {fails:>9d}/{reqs:<8d}")  # fmt: skip
    for kind in ("signed", "boto3"):
        print(f"{kind} / unsigned: req/s {med[kind][0] / med['unsigned'][0]:.0%}, "
              f"req/CPU-s {med[kind][1] / med['unsigned'][1]:.0%}")  # fmt: skip

    busy = max(other for *_, other in med.values())
    if busy > 0.2:
        print(f"note: other work used up to {busy:.2f} cores during the runs: req/s is "
              "depressed, trust req/CPU-s more", file=sys.stderr)  # fmt: skip

    broken = [
        k
        for k, v in results.items()
        if sum(s.failures for s in v) > MAX_FAILURE_RATE * sum(s.requests for s in v)
    ]
    if broken:
        print(f"FAILED: failures above {MAX_FAILURE_RATE:.1%} for {', '.join(broken)} "
              "(a broken setup: the figures above do not count)", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
