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
import scipy.stats  # noqa: F401 - imported now: a second-long import mid-run would stall the load
from gevent.queue import Queue
from locust import LoadTestShape, events

from recommender.loadgen.driver import Driver
from recommender.loadgen.payloads import load_payloads
from recommender.loadgen.recorder import Recorder, error_kind
from recommender.loadgen.sigv4 import Credentials, SigV4Signer
from recommender.plan import RampPlan, Slo
from recommender.search import AdaptiveSearch, Controller, FixedRamp, SearchSettings

CONFIG_ENV = "RECOMMENDER_CONFIG"
LATENCY_FILE = "latency.jsonl"
GENERATOR_FILE = "generator.json"
SEARCH_FILE = "search.json"


class _State:
    """Process-wide state of the load test (Locust runs one test per process)."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
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
        self.driver: Driver | None = None
        self.tickets: Queue[tuple[float, int]] = Queue()
        self.recorder: Recorder | None = None
        self.out: IO[str] | None = None
        self.process = psutil.Process()


def _controller(config: dict[str, Any]) -> Controller:
    slo = Slo.from_dict(config["slo"])
    spec = config["controller"]
    if spec["mode"] == "adaptive":
        return AdaptiveSearch(SearchSettings(**spec["settings"]), slo)
    return FixedRamp(RampPlan.from_dict(spec["plan"]), slo, spec["abort_error_rate"],
                     spec["abort_latency_factor"])  # fmt: skip


def _signer(options: dict[str, Any]) -> SigV4Signer:
    # Imported here, after Locust's gevent patching: boto3 imported before it breaks.
    from recommender.aws import credentials_provider

    frozen = credentials_provider(options.get("profile"))
    return SigV4Signer(options["region"], lambda: Credentials(*frozen()))


STATE = _State()


def next_ticket() -> tuple[float, int]:
    """Block until a send is due: (intended epoch time, stage). Tickets queue up while
    every user is busy, keeping their intended times (coordinated omission)."""
    ticket: tuple[float, int] = STATE.tickets.get()
    return ticket


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
    if STATE.driver is not None:
        STATE.driver.on_second(record)


def _flush(now: float) -> None:
    if STATE.recorder is not None:
        STATE.recorder.flush(now)


def _save_search() -> None:
    """The stages as played and every decision, rewritten at each decision, so an
    interrupted run keeps them."""
    assert STATE.driver is not None
    controller = STATE.driver.controller
    data = {
        "mode": STATE.config["controller"]["mode"],
        "stages": [{"rps": r, "start": a, "end": b} for r, a, b in controller.stages],
        "decisions": [d.to_dict() for d in controller.decisions],
        "done": controller.done,
    }
    tmp = STATE.run_dir / f".{SEARCH_FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(STATE.run_dir / SEARCH_FILE)


def _dispatcher() -> None:
    """The arrival process: releases each ticket into the queue at its intended time."""
    driver = STATE.driver
    assert driver is not None
    while not driver.done:
        now = time.time()
        for ticket in driver.due(now):
            STATE.tickets.put(ticket)
        nxt = driver.next_time(time.time())
        if nxt is None:
            break
        # Wake at least every 0.25 s: an abort can move the stage's end earlier.
        gevent.sleep(max(0.0, min(nxt - time.time(), 0.25)))


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
    STATE.driver = Driver(
        _controller(STATE.config),
        STATE.t0,
        arrivals=STATE.config.get("arrivals", "uniform"),
        seed=STATE.config.get("seed"),
        flush=_flush,
        on_decision=_save_search,
    )
    STATE.out = (STATE.run_dir / LATENCY_FILE).open("a", encoding="utf-8")
    _cpu()  # the first psutil sample only primes the counter
    STATE.recorder = Recorder(STATE.t0, STATE.driver.stage_at, _write, _cpu)
    _save_search()
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
    gevent.spawn(_dispatcher)


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
    """Holds the user pool until the stage controller stops, then ends the test.

    The rate is not set here: users take send times from the dispatcher's queue. The pool
    is spawned before the run's first second (t0 waits for it).
    """

    def tick(self) -> tuple[int, float] | None:
        users = int(STATE.config["users"])
        if STATE.driver is not None and STATE.driver.done:
            return None
        return users, float(max(users, 1))
