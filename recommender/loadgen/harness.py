"""The part of a load test that lives inside the Locust subprocess(es).

Locust loads `entry.py` (which imports this module) beside the user's locustfile. One
process plays one of three roles:

- local: the whole test in one process. It reads the loadgen config from
  $RECOMMENDER_CONFIG, runs the stage controller, releases send times into a queue that
  paced users take from, folds Locust's request events into per-second records and appends
  them to the run directory, flushing as it goes (an interrupted run keeps what it measured).
- master (Locust's distributed mode): reads the config, runs the stage controller alone,
  sends the config and every stage decision to the workers, and merges the workers'
  per-second records exactly (recommender.loadgen.merge) into the run directory.
- worker: gets the config and the stages from the master, sends its share of the offered
  rate, and sends its per-second records to the master every second.
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
from gevent.queue import Empty, Queue
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from recommender.loadgen.driver import Driver
from recommender.loadgen.merge import SecondMerger
from recommender.loadgen.payloads import load_payloads
from recommender.loadgen.recorder import Recorder, error_kind
from recommender.loadgen.requestlog import RequestLog
from recommender.loadgen.sigv4 import Credentials, SigV4Signer
from recommender.plan import RampPlan, SearchSettings, Slo
from recommender.search import AdaptiveSearch, Controller, FixedRamp, Follower

CONFIG_ENV = "RECOMMENDER_CONFIG"
LATENCY_FILE = "latency.jsonl"
GENERATOR_FILE = "generator.json"
SEARCH_FILE = "search.json"
MSG_CONFIG = "recommender_config"  # master -> workers: what to send, and how
MSG_STAGES = "recommender_stages"  # master -> workers: t0 and the stages decided so far
MSG_SECONDS = "recommender_seconds"  # worker -> master: flushed per-second records
FINISH_GRACE = 5.0  # seconds the master waits for the workers' last records
FINAL_UPTO = 10**9  # a worker's "I have sent everything"


class _State:
    """Process-wide state of the load test (Locust runs one test per process)."""

    def __init__(self) -> None:
        self.role = "local"
        self.runner: Any = None
        self.config: dict[str, Any] = {}
        self.run_dir: Path | None = None
        self.bodies: Iterator[bytes] = iter(())
        self.headers: dict[str, str] = {}
        self.path = "/invocations"
        self.host = ""
        self.signer: SigV4Signer | None = None
        self.t0: float | None = None
        self.driver: Driver | None = None
        self.tickets: Queue[tuple[float, int]] = Queue()
        self.recorder: Recorder | None = None
        self.out: IO[str] | None = None
        self.process = psutil.Process()
        self.merger: SecondMerger | None = None
        self.outbox: list[dict[str, Any]] = []  # a worker's records not sent yet
        self.done_at: float | None = None
        self.unsent = 0  # tickets dropped at the end of the plan
        self.request_log: RequestLog | None = None  # --keep-requests
        self.unsent_by_worker: dict[str, int] = {}
        self.lost: dict[str, int] = {}
        if os.environ.get(CONFIG_ENV):
            self.configure(json.loads(Path(os.environ[CONFIG_ENV]).read_text()))

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config
        self.run_dir = Path(config["run_dir"]) if config.get("run_dir") else None
        bodies = config.get("bodies") or load_payloads(Path(config["payload"])).bodies
        self.bodies = itertools.cycle([b if isinstance(b, bytes) else b.encode() for b in bodies])
        self.headers = dict(config["headers"])
        self.path = config["path"]
        self.host = config["host"]
        self.signer = _signer(config["sigv4"]) if config.get("sigv4") else None


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


# --- what users call -------------------------------------------------------------------


def next_ticket() -> tuple[float, int] | None:
    """Block until a send is due: (intended epoch time, stage). Tickets queue up while
    every user is busy, keeping their intended times (coordinated omission). None once
    the load is over, so waiting users let Locust stop them (in-flight ones finish)."""
    while True:
        try:
            ticket: tuple[float, int] = STATE.tickets.get(timeout=0.5)
        except Empty:
            if STATE.driver is not None and STATE.driver.done:
                return None
            continue
        if STATE.driver is not None and STATE.driver.done:
            # The plan is over: sends still queued (the generator fell behind) are not made,
            # or the endpoint would get load past the plan's end. They are counted.
            STATE.unsent += 1 + STATE.tickets.qsize()
            while not STATE.tickets.empty():
                STATE.tickets.get_nowait()
            return None
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


# --- shared pieces ---------------------------------------------------------------------


def _append(record: dict[str, Any]) -> None:
    """Local and master: one more final second into the run directory and the controller."""
    assert STATE.out is not None
    STATE.out.write(json.dumps(record, separators=(",", ":")) + "\n")
    STATE.out.flush()
    if STATE.driver is not None:
        STATE.driver.on_second(record)


def _flush(now: float) -> None:
    if STATE.recorder is not None:
        STATE.recorder.flush(now)
    if STATE.role == "master":
        _merge_final()


def _save_search() -> None:
    """The stages as played and every decision, rewritten at each decision, so an
    interrupted run keeps them; a master also tells its workers."""
    assert STATE.driver is not None and STATE.run_dir is not None
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
    if STATE.role == "master":
        _broadcast_stages()


def _cpu() -> float:
    return float(STATE.process.cpu_percent(interval=None))


def _start_clock() -> float:
    # Start on the next whole multiple of align_seconds (after spawning has had a moment),
    # so the run's seconds coincide with CloudWatch's periods. Users wait for it.
    align = max(1, int(STATE.config.get("align_seconds", 1)))
    return float(math.ceil((time.time() + 1.0) / align) * align)


def _write_generator(extra: dict[str, Any]) -> None:
    assert STATE.run_dir is not None
    data = {"t0": STATE.t0, "pid": os.getpid(), "users": STATE.config["users"],
            "cpu_count": psutil.cpu_count(), **extra}  # fmt: skip
    (STATE.run_dir / GENERATOR_FILE).write_text(json.dumps(data))


def _sender() -> None:
    """Local and worker: the arrival process, releasing each ticket at its intended time."""
    driver = STATE.driver
    assert driver is not None
    while not driver.done:
        now = time.time()
        for ticket in driver.due(now):
            STATE.tickets.put(ticket)
        nxt = driver.next_time(time.time())
        # Wake at least every 0.25 s: an abort can move the stage's end earlier, and a
        # worker waits for the master's next stage.
        wait = 0.05 if nxt is None else nxt - time.time()
        gevent.sleep(max(0.0, min(wait, 0.25)))


def _open_request_log(name: str) -> None:
    """--keep-requests: the run directory (a worker on another machine: its own cwd)."""
    if not STATE.config.get("keep_requests"):
        return
    where = Path(STATE.config.get("requests_dir") or ".")
    STATE.request_log = RequestLog((where if where.is_dir() else Path(".")) / name)


def _flusher() -> None:
    while STATE.recorder is not None:
        gevent.sleep(1.0 - (time.time() - (STATE.t0 or 0.0)) % 1.0 + 0.01)
        if STATE.recorder is not None:
            STATE.recorder.flush(time.time())
        if STATE.request_log is not None:
            STATE.request_log.flush()
        if STATE.role == "worker":
            _send_seconds()


# --- roles ---------------------------------------------------------------------------


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    STATE.runner = environment.runner
    if isinstance(environment.runner, MasterRunner):
        STATE.role = "master"
        environment.runner.register_message(MSG_SECONDS, _on_worker_seconds)
    elif isinstance(environment.runner, WorkerRunner):
        STATE.role = "worker"
        environment.runner.register_message(MSG_CONFIG, _on_config)
        environment.runner.register_message(MSG_STAGES, _on_stages)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    if STATE.t0 is not None or STATE.role == "worker":
        return  # a worker starts when the master's first stages arrive
    STATE.t0 = _start_clock()
    STATE.driver = Driver(_controller(STATE.config), STATE.t0,
                          arrivals=STATE.config.get("arrivals", "uniform"),
                          seed=STATE.config.get("seed"), flush=_flush,
                          on_decision=_save_search)  # fmt: skip
    assert STATE.run_dir is not None
    STATE.out = (STATE.run_dir / LATENCY_FILE).open("a", encoding="utf-8")
    if STATE.role == "master":
        STATE.merger = SecondMerger(expected=int(STATE.config.get("workers", 1)))
        _broadcast_config()
        _save_search()
        _write_generator({"processes": STATE.config.get("workers", 1), "role": "master"})
        gevent.spawn(_master_clock)
        return
    _cpu()  # the first psutil sample only primes the counter
    STATE.recorder = Recorder(STATE.t0, STATE.driver.stage_at, _append, _cpu)
    _open_request_log("requests.parquet")
    _save_search()
    _write_generator({"processes": 1})
    gevent.spawn(_flusher)
    gevent.spawn(_sender)


# master


def _broadcast_config() -> None:
    config = {k: v for k, v in STATE.config.items() if k not in ("run_dir", "payload")}
    config["bodies"] = list(itertools.islice(STATE.bodies, STATE.config.get("bodies_count", 1)))
    STATE.runner.send_message(MSG_CONFIG, config)


def _broadcast_stages() -> None:
    assert STATE.driver is not None
    c = STATE.driver.controller
    data = {"t0": STATE.t0, "stages": [list(s) for s in c.stages], "done": c.done,
            "share": 1.0 / max(1, int(STATE.config.get("workers", 1))),
            "warmup": c.warmup_seconds, "slo": STATE.config["slo"]}  # fmt: skip
    STATE.runner.send_message(MSG_STAGES, data)


def _master_clock() -> None:
    """Cross stage boundaries as time passes; repeat the stages now and then, so a
    worker that missed a message (or joined late) catches up."""
    driver = STATE.driver
    assert driver is not None
    last_broadcast = 0.0
    while not driver.done:
        before = [tuple(s) for s in driver.controller.stages]
        driver.advance_to(time.time())
        _merge_final()
        if [tuple(s) for s in driver.controller.stages] != before:
            _save_search()  # an abort moved the stage's end
        if time.time() - last_broadcast > 1.0:
            _broadcast_stages()
            last_broadcast = time.time()
        _note_lost_workers()
        gevent.sleep(0.1)
    _broadcast_stages()
    STATE.done_at = time.time()


def _note_lost_workers() -> None:
    assert STATE.merger is not None
    for client_id, client in getattr(STATE.runner, "clients", {}).items():
        if getattr(client, "state", None) == "missing" and client_id not in STATE.lost:
            STATE.merger.lose(client_id)
            STATE.lost[client_id] = STATE.merger.workers.get(client_id).upto  # type: ignore[union-attr]


def _on_worker_seconds(environment: Any, msg: Any, **_kw: Any) -> None:
    if STATE.merger is None:
        return
    data = msg.data
    STATE.merger.add(data["worker"], data["records"], int(data["upto"]))
    STATE.unsent_by_worker[data["worker"]] = int(data.get("unsent", 0))
    _merge_final()


def _merge_final(everything: bool = False) -> None:
    if STATE.merger is None or STATE.out is None:
        return
    for record in STATE.merger.final(everything):
        _append(record)


# worker


def _on_config(environment: Any, msg: Any, **_kw: Any) -> None:
    STATE.configure(msg.data)


def _on_stages(environment: Any, msg: Any, **_kw: Any) -> None:
    data = msg.data
    if STATE.driver is None:
        STATE.t0 = float(data["t0"])
        follower = Follower(Slo.from_dict(data["slo"]), float(data["warmup"]))
        follower.update([tuple(s) for s in data["stages"]], bool(data["done"]))
        STATE.driver = Driver(
            follower,
            STATE.t0,
            arrivals=STATE.config.get("arrivals", "uniform"),
            share=float(data["share"]),
            seed=STATE.config.get("seed"),
        )
        _cpu()
        STATE.recorder = Recorder(STATE.t0, STATE.driver.stage_at, STATE.outbox.append, _cpu)
        _open_request_log(f"requests-{STATE.runner.client_id}.parquet")
        gevent.spawn(_flusher)
        gevent.spawn(_sender)
        return
    controller = STATE.driver.controller
    assert isinstance(controller, Follower)
    controller.update([tuple(s) for s in data["stages"]], bool(data["done"]))


def _send_seconds(final: bool = False) -> None:
    if STATE.t0 is None:
        return
    records, STATE.outbox[:] = list(STATE.outbox), []
    upto = FINAL_UPTO if final else int(time.time() - STATE.t0) - 1
    STATE.runner.send_message(MSG_SECONDS, {"worker": STATE.runner.client_id,
                                            "records": records, "upto": upto,
                                            "unsent": STATE.unsent})  # fmt: skip


# --- every role ------------------------------------------------------------------------


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
    end, latency_ms = time.time(), float(response_time or 0.0)
    intended, error = (context or {}).get("intended"), error_kind(exception, status)
    STATE.recorder.record(end, latency_ms, intended, error)
    if STATE.request_log is not None and STATE.t0 is not None and STATE.driver is not None:
        # The stage it was sent in (one completing after the plan's end still has one).
        stage = STATE.driver.stage_at(int((intended or end) - STATE.t0))
        STATE.request_log.add(intended, end - latency_ms / 1000.0, end, latency_ms, stage, error)


def _finish(**_kw: Any) -> None:
    recorder, STATE.recorder = STATE.recorder, None
    if recorder is not None:
        recorder.flush()
    log, STATE.request_log = STATE.request_log, None
    if log is not None:
        log.close()
    if STATE.role == "worker":
        _send_seconds(final=True)
        return
    if STATE.role == "master" and STATE.merger is not None and STATE.out is not None:
        # Locust may declare the workers stopped before their last records arrive: wait
        # (bounded) for every live worker's final message, so no measured second is lost.
        deadline = time.time() + FINISH_GRACE
        while time.time() < deadline and any(
            t.upto < FINAL_UPTO for t in STATE.merger.workers.values() if t.lost_at is None
        ):
            gevent.sleep(0.05)
        _merge_final(everything=True)
        workers = {
            w: {
                "requests": t.requests,
                "successes": t.ok,
                "cpu_percent_max": t.cpu_max,
                "lost_after_second": t.lost_at,
            }  # fmt: skip
            for w, t in STATE.merger.workers.items()
        }
        _write_generator({"processes": STATE.config.get("workers", 1), "role": "master",
                          "workers": workers,
                          "unsent_at_end": sum(STATE.unsent_by_worker.values())})  # fmt: skip
    elif STATE.role == "local" and STATE.t0 is not None:
        _write_generator({"processes": 1, "unsent_at_end": STATE.unsent})
    if STATE.out is not None:
        STATE.out.close()
        STATE.out = None


events.test_stop.add_listener(_finish)
events.quitting.add_listener(_finish)


class RampShape(LoadTestShape):
    """Holds the user pool until the stage controller stops, then ends the test.

    The rate is not set here: users take send times from the sender's queue. The pool is
    spawned before the run's first second (t0 waits for it). A master waits a moment
    after the last stage for the workers' last seconds.
    """

    def tick(self) -> tuple[int, float] | None:
        users = int(STATE.config["users"])
        driver = STATE.driver
        if driver is not None and driver.done:
            if STATE.role != "master":
                return None
            merger = STATE.merger
            end = driver.controller.stages[-1][2] if driver.controller.stages else 0.0
            caught_up = merger is not None and merger.final_upto >= math.floor(end) - 1
            if caught_up or time.time() - (STATE.done_at or time.time()) > FINISH_GRACE:
                return None
        return users, float(max(users, 1))
