"""Serverless sizing against the emulated serverless variant, whose truth is its parameters.

    .venv/bin/python bench/bench_serverless.py [--json results.json]

For each configuration (MaxConcurrency M, ProvisionedConcurrency P, service time S ms, cold
start C ms; idle timeout 120 s, so executions that started stay warm for the run) the script
starts the AWS emulator (recommender.local.emulator_app), registers a serverless endpoint
there (its ServerlessConfig), starts `recommender serve --serverless ... --publish-metrics`,
runs the user's commands

    recommender run --endpoint E --kind serverless --arrivals poisson --slo "p95<=150ms" ...
    recommender report RUN_DIR --peak-rps R

and compares what analysis.json says with the truth (recommender.local.serverless):

- throughput per execution (Little's law, 1000 / warm latency) against 1000 / S;
(`--abort-latency 3s`: the first cold starts must not end a stage before it is judged.)

- the throughput per execution the search sustained within 1% errors, against Erlang's loss
  formula: with random (Poisson) arrivals the throttled share at rate L is B(M, L x S), so
  the truth is the L with B(M, L x S / 1000) = 1%, divided by M;
- the latency of a cold request (the client's cold mode) against C + S;
- cold starts and throttled requests: the client's counts and CloudWatch's ModelSetupTime
  SampleCount against what the server counted (/stats);
- ProvisionedConcurrency for the peak: the run's against the same formula on the true S.

Not a test: about 5 minutes; the figures go into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recommender.analysis.serverless import cold_budget, servers_for
from recommender.aws import AwsClient
from recommender.local.emulator import EMULATOR_ENV, running_emulator
from recommender.local.process import running_server
from recommender.local.publisher import PublishConfig
from recommender.local.server import ServerConfig
from recommender.local.serverless import ServerlessEmulation
from recommender.plan import parse_slo

SLO = "p95<=150ms"
MAX_ERROR_RATE = 0.01


@dataclass(frozen=True)
class Config:
    name: str
    emulation: ServerlessEmulation
    service_ms: float
    start_rps: float
    max_rps: float
    peak_rps: float
    stage_seconds: int  # low rates need long stages: Poisson counts vary by sqrt(n)
    # The arrival schedule's seed. The generator-limited check compares the achieved rate
    # with the offered one, so a Poisson schedule that happens to fall 5% short at a low rate
    # stops the search (seed 1 does at 8 rps): see bench/README.md.
    seed: int = 1


CONFIGS = (
    Config("M4 P1 S50 C400", ServerlessEmulation(4, 1, 400.0, 120.0), 50.0, 8, 80, 20, 40, 2),
    Config("M8 P2 S25 C800", ServerlessEmulation(8, 2, 800.0, 120.0), 25.0, 20, 320, 80, 20),
)


def erlang_b(servers: int, load: float) -> float:
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def true_rate(m: int, service_ms: float, blocking: float) -> float:
    """The arrival rate (requests/s) at which B(m, rate x S) = blocking (bisection)."""
    lo, hi = 0.0, m * 1000.0 / service_ms
    for _ in range(60):
        mid = (lo + hi) / 2
        if erlang_b(m, mid * service_ms / 1000.0) > blocking:
            hi = mid
        else:
            lo = mid
    return lo


def stats(server: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server}/stats", timeout=5) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


def run_config(c: Config, out: Path) -> dict[str, Any]:
    with running_emulator() as emulator:
        aws = AwsClient.create("us-east-1", endpoint_url=emulator)
        aws.create_endpoint("bench", "AllTraffic", "", 0, image="local/bench:latest",
                            serverless=c.emulation.service_config())  # fmt: skip
        server_config = ServerConfig(port=0, service_time_ms=c.service_ms, model="sleep",
                                     serverless=c.emulation,
                                     publish=PublishConfig("bench", period=1,
                                                           aws_endpoint_url=emulator))
        with running_server(replace(server_config)) as server:
            run = [sys.executable, "-m", "recommender", "run", "--endpoint", "bench",
                   "--kind", "serverless", "--endpoint-url", server,
                   "--aws-endpoint-url", emulator, "--arrivals", "poisson", "--slo", SLO,
                   "--seed", str(c.seed),
                   "--start-rps", str(c.start_rps), "--max-rps", str(c.max_rps),
                   "--stage-seconds", str(c.stage_seconds), "--warmup-seconds", "5",
                   "--abort-latency", "3s", "--max-duration", "300", "--precision", "0.1",
                   "--cloudwatch-period", "1", "--cloudwatch-wait", "15",
                   "--quiet", "--yes", "--out", str(out)]  # fmt: skip
            print("$", " ".join(run[2:]), flush=True)
            subprocess.run(run, check=False, env=os.environ)
            truth = stats(server)
    run_dir = max(out.iterdir(), key=lambda p: p.stat().st_mtime)
    subprocess.run([sys.executable, "-m", "recommender", "report", str(run_dir),
                    "--peak-rps", str(c.peak_rps)], check=True, env=os.environ,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    s = json.loads((run_dir / "analysis.json").read_text())["serverless"]
    e, slo = c.emulation, parse_slo([SLO], MAX_ERROR_RATE)
    cold_ms = e.cold_start_ms + c.service_ms
    budget = cold_budget(slo, cold_ms)
    load = c.peak_rps * c.service_ms / 1000.0
    true_p = min(e.max_concurrency, max(1, servers_for(load, budget or 0.0)))
    return {
        "config": c.name,
        "run_dir": str(run_dir),
        "per_execution_littles": (s["littles_rps_per_concurrency"], 1000.0 / c.service_ms),
        "per_execution_within_slo": (
            s["rps_per_concurrency"],
            true_rate(e.max_concurrency, c.service_ms, MAX_ERROR_RATE) / e.max_concurrency,
        ),
        "cold_latency_ms": (s["cold_latency_ms"], cold_ms),
        "cold_starts_client": (sum(x["cold"] or 0 for x in s["stages"]), truth["cold_starts"]),
        "cold_starts_model_setup_time": (s["model_setup_count"], truth["cold_starts"]),
        "throttled": (s["throttled"], truth["throttled"]),
        "provisioned_concurrency": (s["sizing"]["provisioned_concurrency"], true_p),
    }


def _fmt(v: object) -> str:
    return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", help="run the configuration of this name alone")
    args = parser.parse_args()
    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in CONFIGS:
            if args.only in (None, c.name):
                results.append(run_config(c, Path(tmp)))
    print(f"\n{platform.python_version()}, {os.cpu_count()} CPUs; SLO {SLO}, errors <= 1%")
    for r in results:
        print(f"\n{r['config']} (peak {next(c.peak_rps for c in CONFIGS if c.name == r['config'])}"
              " rps)\n\n| what | estimate | truth |\n|---|---:|---:|")  # fmt: skip
        for key, pair in r.items():
            if key not in ("config", "run_dir"):
                print(f"| {key} | {_fmt(pair[0])} | {_fmt(pair[1])} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
