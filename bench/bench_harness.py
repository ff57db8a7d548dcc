"""What the harness costs Locust per request: the calls every request makes into
recommender.loadgen (no network, no server).

    .venv/bin/python bench/bench_harness.py [N]

- request_event: Locust's `events.request.fire(...)` of one success, as FastHttpUser fires it:
  the harness's hook hands it to the local role, which folds it into the second's histograms;
- headers_for: `harness.headers_for(path, body)` of a SigV4-signed target (fake env
  credentials; the signer keeps each signature for the rest of its second);
- next_ticket: `harness.next_ticket()` with tickets already queued (no wait);
- invoke_prep: what InvocationsUser.invoke does before it POSTs (path, body, signed headers).

Each in ns per call, the median of 5 rounds of N calls. It imports Locust, so it runs in a
process of its own (as this script is); the figures are in bench/README.md, not asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROUNDS = 5
BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
PATH = "/endpoints/bench/invocations"


def _config(tmp: Path) -> dict[str, Any]:
    """The config as the runner gives it, for a signed fixed-ramp run."""
    (tmp / "p.jsonl").write_bytes(BODY + b"\n")
    plan = {"stages": [{"rps": 10, "seconds": 5}], "warmup_seconds": 1.0}
    return {
        "run_dir": str(tmp), "controller": {"mode": "fixed", "plan": plan,
        "abort_error_rate": 0.1, "abort_latency_factor": 3.0},
        "slo": {"terms": [{"stat": "p95", "limit_ms": 100.0}], "max_error_rate": 0.01},
        "arrivals": "uniform", "path": PATH, "host": "127.0.0.1:8080",
        "headers": {"Content-Type": "application/json"}, "payload": str(tmp / "p.jsonl"),
        "users": 10, "workers": 0, "bodies_count": 1, "keep_requests": False,
        "requests_dir": str(tmp), "seed": None, "align_seconds": 1,
        "sigv4": {"region": "us-east-1", "profile": None},
    }  # fmt: skip


def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    os.environ.update(
        RECOMMENDER_CONFIG=json.dumps(_config(tmp)),
        AWS_ACCESS_KEY_ID="AKID",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_SESSION_TOKEN="token",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    from locust import events

    from recommender.loadgen import harness, roles
    from recommender.loadgen.recorder import Recorder

    class Environment:  # what Locust's init hands the harness; no runner: the local role
        runner = None

    class Response:
        status_code = 200

    harness._on_init(Environment())
    role = harness._role
    assert isinstance(role, roles.LocalRole)
    t0 = float(int(time.time()))
    # As at the test's start, without the sender and flusher greenlets.
    role.t0, role.recorder = t0, Recorder(t0, lambda _s: 0, lambda _r: None)
    fire, response, context = events.request.fire, Response(), {"intended": t0 + 0.1}

    def request_event() -> None:
        fire(request_type="POST", name="invocations", response_time=12.5, response_length=10,
             response=response, context=context, exception=None, start_time=t0,
             url=PATH)  # fmt: skip

    def headers_for() -> None:
        harness.headers_for(PATH, BODY)

    def next_ticket() -> None:
        harness.next_ticket()

    def invoke_prep() -> None:
        invocation = harness.invocation()
        path, body = invocation.path, invocation.next_body()
        invocation.headers_for(path, body, None)

    def timed(call: Callable[[], None], before: Callable[[], None] | None = None) -> float:
        if before is not None:
            before()
        start = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - start) / n * 1e9

    def fill() -> None:
        for _ in range(n):
            role.tickets.put((t0, 0))

    cases: list[tuple[str, Callable[[], None], Callable[[], None] | None]] = [
        ("request_event", request_event, None), ("headers_for", headers_for, None),
        ("next_ticket", next_ticket, fill), ("invoke_prep", invoke_prep, None),
    ]  # fmt: skip
    results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(ROUNDS):
        for name, call, before in cases:
            results[name].append(timed(call, before))
        role.recorder.flush()
    print(f"{n} calls x {ROUNDS} rounds, Python {sys.version.split()[0]}; ns per call (median):")
    for name, values in results.items():
        print(f"  {name:14s} {statistics.median(values):8.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
