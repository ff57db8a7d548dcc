"""Shared fixtures: synthetic run data for the pure parts, a real server for the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from recommender import histograms, runs
from recommender.plan import RampPlan, Slo, Stage, parse_slo

if TYPE_CHECKING:
    from recommender.local.server import ServerConfig


# Seconds each file's tests (the `serial` ones aside) take alone on an idle 2-core machine,
# for the files that wait on load. `make test` runs whole files on four processes
# (`--dist loadfile`), handing out the next file as a process runs dry; xdist's own order
# (most tests first) left the slowest files, which have few tests, to the end, where one
# process ran them alone while the others idled. Longest first, the tail is short.
# Update a number when a file's time changes by much; a file not listed counts as fast.
FILE_SECONDS = {
    "test_integration.py": 139,
    "test_verify.py": 110,
    "test_sagemaker.py": 109,
    "test_sweep.py": 104,
    "test_regression_gate.py": 90,
    "test_demo.py": 85,
    "test_faults.py": 80,
    "test_inference_component.py": 40,
    "test_async.py": 36,
    "test_hosting.py": 36,
    "test_live.py": 31,
    "test_serverless.py": 25,
    "test_apply.py": 18,
    "test_result_json.py": 15,
    "test_secrets.py": 15,
    "test_stream.py": 15,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist, order the files longest first (see FILE_SECONDS); a file's own
    tests keep their order. `make test` passes --no-loadscope-reorder so xdist keeps it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 0))


def interruptible() -> None:
    """`preexec_fn` for a child process a test sends Ctrl-C (SIGINT): SIGINT's default
    action in it, whatever pytest inherited. A shell starts a background job (`make test &`)
    with SIGINT ignored; Python then installs no KeyboardInterrupt handler, so the child
    ignored the test's SIGINT and ran its plan to the end (exit 0, not 130)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """A test's child process, killed and reaped on the way out if it still runs (a wait
    that ran out, an assertion that failed), so no load outlives the test."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


@pytest.fixture
def keyboard_interrupts() -> Iterator[None]:
    """In this process, SIGINT raises KeyboardInterrupt, as in a terminal, whatever pytest
    inherited: under a background job (`.ci/run &`, `make test &`) SIGINT is ignored and
    Python installs no handler, so a test's own SIGINT did nothing (test_sweep, beside
    the neighbour in CI). The handler before is put back after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def use_emulator_credentials(mp: pytest.MonkeyPatch, home: Path) -> None:
    """The emulator's throwaway credentials, and none of the user's AWS config or credential
    files (a profile there must never be picked up by a test)."""
    from recommender.local.emulator import EMULATOR_ENV

    for key, value in EMULATOR_ENV.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    mp.setenv("AWS_CONFIG_FILE", str(home / "no-config"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-credentials"))


def synthetic_records(
    plan: RampPlan,
    latency_ms: Sequence[float],
    error_rate: Sequence[float] | None = None,
    achieved: Sequence[float] | None = None,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """Per-second records as the recorder writes them: stage i completes `achieved[i]`
    requests a second (default: its offered rate) with latencies around `latency_ms[i]`."""
    rng = np.random.default_rng(seed)
    out = []
    for i, ((start, end), stage) in enumerate(zip(plan.stage_bounds(), plan.stages, strict=True)):
        rate = achieved[i] if achieved else stage.rps
        err = error_rate[i] if error_rate else 0.0
        for second in range(int(start), int(end)):
            n = int(round(rate))
            errors = int(round(n * err))
            hist = histograms.new()
            for v in rng.gamma(16.0, latency_ms[i] / 16.0, size=n - errors):
                histograms.record_ms(hist, float(v))
            enc = histograms.encode(hist) if n - errors else ""
            out.append(
                {
                    "second": second,
                    "stage": i,
                    "requests": n,
                    "ok": n - errors,
                    "errors": {"HTTP 503": errors} if errors else {},
                    "latency_us": enc,
                    "latency_co_us": enc,
                    "cpu_percent": 20.0,
                }
            )
    return out


def write_run(
    path: Path,
    plan: RampPlan,
    records: list[dict[str, Any]],
    slo: Slo | None = None,
    instances: int = 1,
    status: str = "complete",
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    slo = slo or parse_slo(["p95<=100ms"])
    meta = {
        "schema_version": runs.SCHEMA_VERSION,
        "name": "synthetic",
        "status": status,
        "target": {"url": "http://127.0.0.1:1/invocations", "instances": instances},
        "plan": plan.to_dict(),
        "slo": slo.to_dict(),
        "totals": runs.totals(records),
    }
    runs.write_json(path / runs.RUN_FILE, meta)
    with (path / runs.LATENCY_FILE).open("w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


@pytest.fixture
def ramp() -> RampPlan:
    return RampPlan(tuple(Stage(r, 5) for r in (20, 40, 60, 80, 100)), warmup_seconds=1)


def demo_config() -> ServerConfig:
    """The `demo_server`: 1 instance, 2 slots, 20 ms -> 100 req/s."""
    from recommender.local.server import ServerConfig

    return ServerConfig(port=0, concurrency=2, service_time_ms=20.0, model="sklearn",
                        max_queue=20)  # fmt: skip


def calm_config(slots: int = 4) -> ServerConfig:
    """The `calm_server`: 1 instance, `slots` slots of 100 ms (4: 40 req/s), for the
    capacity-vs-truth tests that run beside other load tests, with an SLO of p95 <= 250 ms.

    Below saturation under uniform arrivals its latency is the 100 ms of service (plus the
    HTTP time), which leaves 150 ms for what a busy machine adds: a server or Locust stalled
    for tens of ms, and the backlog that builds meanwhile, which a stage at 95% of saturation
    drains only slowly. The demo server's 20 ms of service left 80 ms under its 100 ms SLO,
    and such stalls failed its stage at 95 beside other tests. (Not more than 150: above
    saturation latency climbs by the overload's share of a second each second, whatever the
    service time, 100 ms a second at 10% over, so a larger margin would let a 3 s stage 10%
    over saturation pass.) At 4 slots its rates, hence Locust's CPU, are 2.5 times lower.

    Its queue holds 10 requests a slot, so a saturated instance's latency climbs to 1.1 s,
    past the SLO, as the demo server's (20 queued behind 2 slots of 20 ms: 220 ms) climbs
    past its 100 ms; a shorter queue would cap it under the SLO and leave only the 503s to
    fail a stage above saturation."""
    from recommender.local.server import ServerConfig

    return ServerConfig(port=0, concurrency=slots, service_time_ms=100.0, model="sklearn",
                        max_queue=10 * slots)  # fmt: skip


@contextmanager
def running_demo_server(config: ServerConfig | None = None) -> Iterator[str]:
    """A real `recommender serve` subprocess: `demo_config()` unless told."""
    from recommender.local.process import running_server

    with running_server(config or demo_config()) as url:
        yield url


@pytest.fixture
def demo_server() -> Iterator[str]:
    """`running_demo_server`, one per test."""
    with running_demo_server() as url:
        yield url


@pytest.fixture
def calm_server() -> Iterator[str]:
    """A real server with `calm_config()`, one per test."""
    with running_demo_server(calm_config()) as url:
        yield url


@pytest.fixture(scope="module")
def shared_demo_server() -> Iterator[str]:
    """`running_demo_server`, one per module (a start costs seconds on a busy machine), for
    tests that only load it, one run at a time, and check nothing another run could leave
    behind in it (not the capacity-vs-truth tests: they get a fresh one)."""
    with running_demo_server() as url:
        yield url


def update_run_meta(path: Path, **changes: Any) -> Path:
    """Merge keys into a run directory's run.json (`target` is merged key by key), as a
    run against a real endpoint would have recorded them."""
    run_file = path / runs.RUN_FILE
    meta = json.loads(run_file.read_text())
    target = changes.pop("target", None)
    if target:
        meta["target"] = {**meta["target"], **target}
    meta.update(changes)
    runs.write_json(run_file, meta)
    return path


def step_run(
    path: Path,
    passing_up_to: float,
    rates: Sequence[float] = tuple(range(40, 140, 10)),
    seed: int = 1,
) -> Path:
    """A run whose latency steps from ~30 ms to ~200 ms (p95 <= 100 ms breaks) above
    `passing_up_to` requests/s: its capacity lies between the last passing and first
    failing stage."""
    plan = RampPlan(tuple(Stage(r, 4) for r in rates), warmup_seconds=1)
    latency = [30.0 if r <= passing_up_to else 200.0 for r in rates]
    return write_run(path, plan, synthetic_records(plan, latency, seed=seed))


def known_truth(analysis: dict[str, Any], server: ServerConfig | None = None) -> float:
    """The capacity of a 1-instance server (`demo_config()` unless told: 2 slots of 20 ms,
    saturation 100 req/s) within its run's SLO, for the arrivals the run used: its saturation
    under uniform arrivals (they never queue below it); under Poisson arrivals the M/D/c
    queue's steady-state quantile, plus the HTTP time the run's lowest stage shows (its p95
    beyond the service time, about 1-5 ms here) on every request: about 82 req/s for the
    demo server and p95 <= 100 ms."""
    from recommender.queueing import poisson_capacity

    server = server or demo_config()
    if analysis["arrivals"] == "uniform":
        return server.capacity_rps
    (term,) = Slo.from_dict(analysis["slo"]).terms
    assert term.quantile is not None
    service = server.service_time_ms
    low = min(analysis["stages"], key=lambda s: s["offered_rps"])
    overhead = max(0.0, min(5.0, (low["p95_ms"] or 0.0) - service))
    return poisson_capacity(1, server.concurrency, service, term.quantile, term.limit_ms,
                            overhead)  # fmt: skip


def assert_interpolates_the_known_truth(
    analysis: dict[str, Any], server: ServerConfig | None = None
) -> float:
    """A run against a 1-instance server (`demo_config()` unless told) with stages from 35%
    to 115% of its saturation (35-115 req/s for the demo server): the estimate interpolates
    strictly inside a bracket that holds the truth for the run's arrivals (`known_truth`).
    Returns the estimate.

    How close it must be depends on the arrivals: uniform arrivals keep latency flat up to
    saturation, so the passing stage at 95% sits just under the truth and the estimate is
    within 5% of it; under Poisson arrivals the demo server's bracket is [75, 95] offered
    around a truth of about 82 and 4 s windows count Poisson arrivals to +-6%, so the
    estimate is held to the bracket's half width, 12% of the truth. (With 3 s windows on a
    busy machine the stage at 75 failed once in three runs: 5 s stages.)"""
    capacity = analysis["capacity"]
    truth = known_truth(analysis, server)
    cap = float(capacity["rps_per_instance"])
    lo, hi = capacity["interval_rps_per_instance"]
    assert capacity["method"] == "interpolated", analysis["stages"]
    # An overloaded stage completes the saturation throughput less what is still in the
    # server when it ends (a slot's worth each: 4 requests over a 4 s stage of a 40 req/s
    # server is 2.5%), and under uniform arrivals the truth is that saturation: hence 3%.
    assert 0.85 * truth <= lo <= truth <= 1.03 * hi and hi <= 1.2 * truth, (
        truth, analysis["stages"])  # fmt: skip
    tolerance = (0.95, 1.0) if analysis["arrivals"] == "uniform" else (0.88, 1.12)
    assert lo + 0.002 * truth < cap < hi, (cap, analysis["stages"])
    assert tolerance[0] * truth <= cap <= tolerance[1] * truth, (cap, truth, analysis["stages"])
    return cap


def reset_emulator(url: str) -> None:
    """Empty a running AWS emulator (moto's state, every service, and our extensions':
    inference components, scaling activities), as a new one would be, in a fraction of the
    seconds a new one takes to start."""
    import urllib.request

    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
