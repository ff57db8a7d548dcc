"""`recommender demo`: the whole pipeline against a local server of known capacity.

The server (1 instance, 4 slots, 20 ms per request) saturates at exactly 200 requests/s;
the ramp crosses that, and the SLO (p95 <= 150 ms) is met well below it and broken just
above, so the estimate can be read against the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recommender.analysis import Analysis
from recommender.loadgen.runner import LoadTestResult, LoadTestSpec
from recommender.local.process import running_server
from recommender.local.server import ServerConfig
from recommender.pipeline import run_pipeline
from recommender.plan import Target, linear_ramp, parse_slo

DEMO_SERVER = ServerConfig(port=0, instances=1, concurrency=4, service_time_ms=20.0,
                           model="sklearn")  # fmt: skip
DEMO_SLO = "p95<=150ms"


@dataclass(frozen=True)
class DemoResult:
    loadtest: LoadTestResult
    analysis: Analysis
    true_capacity: float


def run_demo(out: Path, echo: Callable[[str], None] = print) -> DemoResult:
    plan = linear_ramp(start_rps=60, max_rps=235, stages=8, stage_seconds=10, warmup_seconds=2)
    echo(f"Starting the demo model server (true capacity {DEMO_SERVER.capacity_rps:g} rps)...")
    with running_server(DEMO_SERVER) as base:
        target = Target(url=f"{base}/invocations", name="demo", instances=1)
        spec = LoadTestSpec(target, plan, parse_slo([DEMO_SLO]), out=out)
        result = run_pipeline(spec, 0.5, echo)
    return DemoResult(result.loadtest, result.analysis, DEMO_SERVER.capacity_rps)
