"""What reading streamed answers costs the load generator: requests and tokens per CPU-second
of the Locust process, streaming against non-streaming, through the production path.

    .venv/bin/python bench/bench_stream.py

Each case is a real `recommender` load test (recommender.loadgen.runner.run_loadtest: the
Locust subprocess, the harness, the open-loop pacing, the per-second recorder) at one fixed
offered rate against one `recommender serve --model llm` whose every request streams
TOKENS tokens (no prefill, 2 ms steps that do not slow with the batch, so the server
answers every case alike):

    whole-url       POST /invocations, the body read whole by Locust (no --stream)
    stream-url      POST /invocations --stream: the chunked body read as it arrives,
                    tokens counted per JSON line, TTFT and ITL recorded
    whole-endpoint  SigV4-signed POST /endpoints/bench/invocations (InvokeEndpoint: one
                    JSON answer at the end)
    stream-endpoint SigV4-signed POST /endpoints/bench/invocations-response-stream
                    --stream: event-stream frames (one per token) decoded by botocore

The Locust process's CPU comes from its own per-second records (`cpu_percent`, psutil) over
the stage's measured seconds; tokens are what the stream counted (the whole answers hold
TOKENS each). Cases run interleaved ROUNDS times; medians are printed. Not a test: the
figures go in bench/README.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from recommender.loadgen.runner import LoadTestSpec, run_loadtest
from recommender.loadgen.sigv4 import Credentials
from recommender.local.llm import LlmParams
from recommender.local.process import running_server
from recommender.local.server import ServerConfig
from recommender.plan import RampPlan, Stage, Target, parse_slo

RATE = 150.0  # requests/s offered
TOKENS = 32
SECONDS = 14
WARMUP = 3
ROUNDS = 3
CASES = ("whole-url", "stream-url", "whole-endpoint", "stream-endpoint")
SERVER = ServerConfig(port=0, model="llm", max_queue=4096,
                      llm=LlmParams(max_batch=4096, step_ms=2.0, growth=0.0,
                                    prefill_ms_per_token=0.0))  # fmt: skip
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    rps: float
    tokens_per_s: float
    cpu: float  # Locust's cores busy
    errors: int

    @property
    def req_per_cpu_s(self) -> float:
        return self.rps / self.cpu

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.tokens_per_s / self.cpu


def target(case: str, base: str) -> Target:
    stream = case.startswith("stream")
    if case.endswith("url"):
        return Target(url=f"{base}/invocations", name=case, stream=stream)
    op = "invocations-response-stream" if stream else "invocations"
    return Target(url=f"{base}/endpoints/bench/{op}", name=case, endpoint="bench",
                  variant="AllTraffic", region="us-east-1", stream=stream)  # fmt: skip


def run_case(case: str, base: str, payload: Path, out: Path) -> Sample:
    spec = LoadTestSpec(target=target(case, base),
                        plan=RampPlan((Stage(RATE, SECONDS),), warmup_seconds=WARMUP),
                        slo=parse_slo(["p95<=5s"]), payload=payload, out=out, users=200,
                        credentials=lambda: Credentials("testing", "testing", None))  # fmt: skip
    result = run_loadtest(spec, echo=lambda _: None)
    lines = (result.run_dir / "latency.jsonl").read_text().splitlines()
    window = [r for r in map(json.loads, lines) if WARMUP <= r["second"] < SECONDS]
    ok = sum(r["ok"] for r in window)
    tokens = (sum(r.get("tokens_out", 0) for r in window) if case.startswith("stream")
              else ok * TOKENS)  # fmt: skip
    cpu = sum(r["cpu_percent"] or 0.0 for r in window) / 100.0
    n = len(window)
    return Sample(sum(r["requests"] for r in window) / n, tokens / n, cpu / n,
                  sum(r["requests"] - r["ok"] for r in window))


def main() -> int:
    os.environ.update(FAKE_AWS)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    started = time.monotonic()
    results: dict[str, list[Sample]] = {c: [] for c in CASES}
    with tempfile.TemporaryDirectory() as tmp, running_server(SERVER) as base:
        payload = Path(tmp) / "p.jsonl"
        body = {"inputs": "Tell me a story.", "parameters": {"max_new_tokens": TOKENS}}
        payload.write_text(json.dumps(body) + "\n")
        for round_ in range(1, ROUNDS + 1):
            for case in CASES:
                s = run_case(case, base, payload, Path(tmp) / "runs")
                results[case].append(s)
                print(f"round {round_} {case:15s} {s.rps:6.1f} req/s {s.tokens_per_s:7.0f} tok/s"
                      f"  Locust {s.cpu:4.2f} cores: {s.req_per_cpu_s:6.0f} req/CPU-s "
                      f"{s.tokens_per_cpu_s:7.0f} tok/CPU-s  errors {s.errors}",
                      flush=True)  # fmt: skip
    print()
    print(f"{psutil.cpu_count()} CPUs, Python {platform.python_version()}, {RATE:g} req/s "
          f"offered, {TOKENS} tokens each, {SECONDS - WARMUP} s window, median of {ROUNDS}, "
          f"total {time.monotonic() - started:.0f} s")  # fmt: skip
    med = {c: (statistics.median(s.rps for s in v), statistics.median(s.tokens_per_s for s in v),
               statistics.median(s.cpu for s in v),
               statistics.median(s.req_per_cpu_s for s in v),
               statistics.median(s.tokens_per_cpu_s for s in v)) for c, v in results.items()}
    print(f"{'case':16s} {'req/s':>7s} {'tok/s':>7s} {'Locust':>7s} {'req/CPU-s':>10s} "
          f"{'tok/CPU-s':>10s}")  # fmt: skip
    for case, (rps, tps, cpu, rpc, tpc) in med.items():
        print(f"{case:16s} {rps:7.1f} {tps:7.0f} {cpu:7.2f} {rpc:10.0f} {tpc:10.0f}")
    for transport in ("url", "endpoint"):
        whole, stream = med[f"whole-{transport}"], med[f"stream-{transport}"]
        print(f"stream / whole ({transport}): req/CPU-s {stream[3] / whole[3]:.0%}, "
              f"Locust CPU per request x{whole[3] / stream[3]:.2f}")  # fmt: skip
    bad = [c for c, v in results.items() if sum(s.errors for s in v)]
    if bad:
        print(f"FAILED: errors in {', '.join(bad)} (a broken setup)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
