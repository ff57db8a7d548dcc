"""The part of a load test that lives inside the Locust subprocess.

Locust loads `entry.py` (which imports this module) beside the user's locustfile. This
module reads the run's loadgen config from $RECOMMENDER_CONFIG, owns the arrival schedule
every paced user takes its send times from, feeds Locust's request events into the
`Recorder`, and appends one JSON line per second to the run directory, flushing as it goes
so an interrupted run keeps everything measured up to the interruption.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import gevent
import psutil
from locust import LoadTestShape, events

from recommender.loadgen.payloads import load_payloads
from recommender.loadgen.recorder import Recorder, error_kind
from recommender.loadgen.shape import ArrivalSchedule
from recommender.loadgen.sigv4 import Credentials, SigV4Signer
from recommender.plan import RampPlan

CONFIG_ENV = "RECOMMENDER_CONFIG"
LATENCY_FILE = "latency.jsonl"
GENERATOR_FILE = "generator.json"


class _State:
    """Process-wide state of the load test (Locust runs one test per process)."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
        self.plan = RampPlan.from_dict(self.config["plan"])
        self.run_dir = Path(self.config["run_dir"])
        self.bodies: Iterator[bytes] = itertools.cycle(
            load_payloads(Path(self.config["payload"])).bodies
        )
        self.headers: dict[str, str] = dict(self.config["headers"])
        self.path: str = self.config["path"]
        self.host: str = self.config["host"]
        self.signer: SigV4Signer | None = None
        if self.config.get("sigv4"):
            self.signer = _signer(self.config["sigv4"])
        self.t0: float | None = None
        self.schedule: ArrivalSchedule | None = None
        self.recorder: Recorder | None = None
        self.out: IO[str] | None = None
        self.process = psutil.Process()


def _signer(options: dict[str, Any]) -> SigV4Signer:
    # Imported here, after Locust's gevent patching: boto3 imported before it breaks.
    from recommender.aws import credentials_provider

    frozen = credentials_provider(options.get("profile"))
    return SigV4Signer(options["region"], lambda: Credentials(*frozen()))


STATE = _State()


def take_ticket() -> tuple[float, int] | None:
    """Next intended send time for a paced user; None before the start or after the end."""
    return STATE.schedule.take() if STATE.schedule else None


def next_body() -> bytes:
    return next(STATE.bodies)


def headers_for(path: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, str]:
    """The run's headers (or `headers`), SigV4-signed for this body when the target is a
    SageMaker endpoint. The signature covers the Host header, so it is sent explicitly."""
    base = STATE.headers if headers is None else headers
    if STATE.signer is None:
        return base
    return STATE.signer.sign("POST", STATE.host, path, body, {**base, "Host": STATE.host})


def _write(record: dict[str, Any]) -> None:
    assert STATE.out is not None
    STATE.out.write(json.dumps(record, separators=(",", ":")) + "\n")
    STATE.out.flush()


def _cpu() -> float:
    return float(STATE.process.cpu_percent(interval=None))


def _flusher() -> None:
    while STATE.recorder is not None:
        gevent.sleep(1.0 - (time.time() - (STATE.t0 or 0.0)) % 1.0 + 0.01)
        if STATE.recorder is not None:
            STATE.recorder.flush(time.time())


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    if STATE.t0 is not None:
        return
    # Start on the next whole multiple of align_seconds (after spawning has had a moment),
    # so the run's seconds coincide with CloudWatch's periods. Users wait for it.
    align = max(1, int(STATE.config.get("align_seconds", 1)))
    STATE.t0 = math.ceil((time.time() + 0.5) / align) * align
    STATE.schedule = ArrivalSchedule(STATE.plan, STATE.t0, seed=STATE.config.get("seed"))
    STATE.out = (STATE.run_dir / LATENCY_FILE).open("a", encoding="utf-8")
    _cpu()  # the first psutil sample only primes the counter
    STATE.recorder = Recorder(STATE.t0, STATE.plan, _write, _cpu)
    (STATE.run_dir / GENERATOR_FILE).write_text(
        json.dumps(
            {
                "t0": STATE.t0,
                "pid": os.getpid(),
                "users": STATE.config["users"],
                "processes": 1,
                "cpu_count": psutil.cpu_count(),
            }
        )
    )
    gevent.spawn(_flusher)


@events.request.add_listener
def _on_request(
    response_time: float,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    response: Any = None,
    **_kw: Any,
) -> None:
    if STATE.recorder is None:
        return
    status = getattr(response, "status_code", None)
    STATE.recorder.record(
        time.time(),
        float(response_time or 0.0),
        (context or {}).get("intended"),
        error_kind(exception, status),
    )


def _finish(**_kw: Any) -> None:
    recorder, STATE.recorder = STATE.recorder, None
    if recorder is not None:
        recorder.flush()
    if STATE.out is not None:
        STATE.out.close()
        STATE.out = None


events.test_stop.add_listener(_finish)
events.quitting.add_listener(_finish)


class RampShape(LoadTestShape):
    """Holds the user pool for the plan's duration, then ends the test.

    The rate is not set here: users take send times from the arrival schedule. The pool is
    spawned in about a second; warm-up seconds absorb the start.
    """

    def tick(self) -> tuple[int, float] | None:
        users = int(STATE.config["users"])
        if STATE.t0 is not None and time.time() - STATE.t0 >= STATE.plan.duration:
            return None
        return users, float(max(users, 1))
